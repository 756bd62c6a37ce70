#include "privileges.hpp"

#include "xdpfwd/system_error.hpp"

#include <sys/prctl.h>

#include <algorithm>
#include <filesystem>
#include <iterator>
#include <memory>
#include <type_traits>
#include <vector>

namespace xdpfwd::ingress {
namespace {

struct CapFree {
  void operator()(void* object) const { cap_free(object); }
};
using CapSet = std::unique_ptr<std::remove_pointer_t<cap_t>, CapFree>;

bool contains(std::span<const cap_value_t> capabilities, cap_value_t capability) {
  return std::find(capabilities.begin(), capabilities.end(), capability) != capabilities.end();
}

// Those of `wanted` that are not in this process's effective set.
std::vector<cap_value_t> lacking(std::span<const cap_value_t> wanted) {
  const CapSet current(cap_get_proc());
  if (!current) throw_errno("read this process's capabilities");
  std::vector<cap_value_t> missing;
  for (const cap_value_t capability : wanted) {
    cap_flag_value_t value = CAP_CLEAR;
    if (cap_get_flag(current.get(), capability, CAP_EFFECTIVE, &value) != 0 || value != CAP_SET)
      missing.push_back(capability);
  }
  return missing;
}

std::size_t thread_count() {
  const std::filesystem::directory_iterator tasks("/proc/self/task");
  return static_cast<std::size_t>(std::distance(begin(tasks), end(tasks)));
}

} // namespace

std::string capability_names(std::span<const cap_value_t> capabilities) {
  std::string names;
  for (const cap_value_t capability : capabilities) {
    const std::unique_ptr<char, CapFree> name(cap_to_name(capability));
    names += (names.empty() ? "" : ",") + (name ? std::string(name.get()) : std::to_string(capability));
  }
  return names.empty() ? "none" : names;
}

void drop_privileges(uid_t uid, gid_t gid, std::span<const cap_value_t> keep) {
  const std::string what = "drop privileges to uid " + std::to_string(uid) + " gid " + std::to_string(gid);
  if (const std::size_t threads = thread_count(); threads != 1)
    throw_errno(EBUSY, what + ": " + std::to_string(threads) + " threads run, and credentials are per thread");
  std::vector<cap_value_t> needed(keep.begin(), keep.end());
  needed.insert(needed.end(), {CAP_SETUID, CAP_SETGID, CAP_SETPCAP});
  if (const auto missing = lacking(needed); !missing.empty())
    throw_errno(EPERM, what + ": this process lacks " + capability_names(missing) +
                           " (the daemon's capability bounding set, or the container's capabilities, must have them)");

  // The bounding set first: shrinking it takes CAP_SETPCAP, which goes with the rest below.
  for (cap_value_t capability = 0; capability < static_cast<cap_value_t>(cap_max_bits()); ++capability)
    if (!contains(keep, capability) && cap_get_bound(capability) > 0 && cap_drop_bound(capability) != 0)
      throw_errno(what + ": remove " + capability_names({&capability, 1}) + " from the bounding set");
  if (cap_setgroups(gid, 0, nullptr) != 0) throw_errno(what + ": set the gid and clear the supplementary groups");
  // Unlike a plain setuid(), cap_setuid() keeps the permitted set across the change of uid.
  if (cap_setuid(uid) != 0) throw_errno(what + ": set the uid");

  // Permitted and effective: keep. Inheritable: none, which empties the ambient set as well.
  const CapSet kept(cap_init());
  if (!kept) throw_errno(what + ": allocate a capability set");
  const int count = static_cast<int>(keep.size());
  if (cap_set_flag(kept.get(), CAP_PERMITTED, count, keep.data(), CAP_SET) != 0 ||
      cap_set_flag(kept.get(), CAP_EFFECTIVE, count, keep.data(), CAP_SET) != 0 || cap_set_proc(kept.get()) != 0)
    throw_errno(what + ": keep only " + capability_names(keep));
  if (::prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0) throw_errno(what + ": set no_new_privs");
}

} // namespace xdpfwd::ingress
