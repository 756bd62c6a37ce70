#include "host_xdp.hpp"

#include "xdpfwd/log.hpp"
#include "xdpfwd/system_error.hpp"
#include "xdpfwd/unique_fd.hpp"
#include "xdpfwd/xdp_maps.hpp"
#include "xdpfwd_bpf.skel.h"

#include <bpf/bpf.h>
#include <fcntl.h>
#include <linux/if_link.h>
#include <linux/magic.h>
#include <net/if.h>
#include <spdlog/spdlog.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <xdp/libxdp.h>

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <vector>

namespace xdpfwd {
namespace {

constexpr const char* kProgramName = "xdpfwd_xdp";
constexpr const char* kBpffsRoot = "/sys/fs/bpf";

bool on_bpffs(const std::filesystem::path& path) {
  struct statfs info {};
  return ::statfs(path.c_str(), &info) == 0 && info.f_type == BPF_FS_MAGIC;
}

// Pins need a bpf filesystem. systemd mounts one at /sys/fs/bpf; where nobody did (a bare
// container, `ip netns exec`), the daemon mounts it itself.
void prepare_pin_dir(const std::filesystem::path& pin_dir) {
  const auto parent = pin_dir.parent_path();
  if (!on_bpffs(parent)) {
    if (parent != kBpffsRoot)
      throw_errno(EINVAL, "pin dir " + pin_dir.string() + ": " + parent.string() + " is not a bpf filesystem");
    if (::mount("bpf", kBpffsRoot, "bpf", 0, "mode=0700") < 0)
      throw_errno(std::string("mount bpffs on ") + kBpffsRoot);
    spdlog::info("mounted a bpf filesystem on {}", kBpffsRoot);
  }
  if (::mkdir(pin_dir.c_str(), 0700) < 0 && errno != EEXIST) throw_errno("create pin dir " + pin_dir.string());
}

std::string libxdp_error(int error) {
  char text[256];
  libxdp_strerror(error, text, sizeof(text));
  return text;
}

const char* mode_name(xdp_attach_mode mode) { return mode == XDP_MODE_SKB ? "generic" : "native"; }

template <typename Key>
void delete_all_keys(int map_fd) {
  Key key{}, next{};
  // Always restart from the first key: deleting invalidates the position of an iteration.
  while (bpf_map_get_next_key(map_fd, nullptr, &next) == 0) {
    key = next;
    if (bpf_map_delete_elem(map_fd, &key) < 0) throw_errno("empty adopted map");
  }
}

// What a pinned map must share with this xdpfwd's definition to be reused as it is.
struct MapLayout {
  __u32 type = 0;
  __u32 key_size = 0;
  __u32 value_size = 0;
  __u32 max_entries = 0;
  bool operator==(const MapLayout&) const = default;
};

MapLayout layout_of(const bpf_map* map) {
  return {static_cast<__u32>(bpf_map__type(map)), bpf_map__key_size(map), bpf_map__value_size(map),
          bpf_map__max_entries(map)};
}

MapLayout layout_of(int map_fd, const std::filesystem::path& pin) {
  bpf_map_info info{};
  __u32 length = sizeof(info);
  check_libbpf(bpf_obj_get_info_by_fd(map_fd, &info, &length), "read pinned map " + pin.string());
  return {info.type, info.key_size, info.value_size, info.max_entries};
}

std::string type_name(__u32 type) {
  const char* name = libbpf_bpf_map_type_str(static_cast<bpf_map_type>(type));
  return name != nullptr ? name : "type " + std::to_string(type);
}

// What differs, e.g. "max_entries 1024 -> 4096, value size 24 -> 32".
std::string describe_change(const MapLayout& from, const MapLayout& to) {
  std::string text;
  auto field = [&](const char* what, const std::string& before, const std::string& after) {
    if (before == after) return;
    text += (text.empty() ? "" : ", ") + std::string(what) + " " + before + " -> " + after;
  };
  field("type", type_name(from.type), type_name(to.type));
  field("key size", std::to_string(from.key_size), std::to_string(to.key_size));
  field("value size", std::to_string(from.value_size), std::to_string(to.value_size));
  field("max_entries", std::to_string(from.max_entries), std::to_string(to.max_entries));
  return text;
}

// Where a pin of another layout waits for commit(). Not "<name>.old": bpffs refuses names with a
// dot (its own files have them); the colon is what Cilium's ":pending" uses, too.
std::filesystem::path aside(const std::filesystem::path& pin) { return pin.string() + ":old"; }

// A <name>:old pin at start is an upgrade that never completed: the daemon died between moving
// the pin aside and commit() or putting it back. The :old map is the one the previous run's
// state (and maybe its still attached program) goes with: it takes its path back, over a
// half-made new map, and the upgrade starts over.
void restore_unfinished_upgrade(const std::filesystem::path& pin) {
  const auto old = aside(pin);
  if (!std::filesystem::exists(old)) return;
  spdlog::warn("{} is left from an upgrade that did not complete; putting it back at {}", old.string(), pin.string());
  if (::rename(old.c_str(), pin.c_str()) < 0) throw_errno("put " + old.string() + " back at " + pin.string());
}

bool is_array(__u32 type) { return type == BPF_MAP_TYPE_ARRAY || type == BPF_MAP_TYPE_PERCPU_ARRAY; }

bool is_per_cpu(__u32 type) {
  return type == BPF_MAP_TYPE_PERCPU_ARRAY || type == BPF_MAP_TYPE_PERCPU_HASH || type == BPF_MAP_TYPE_LRU_PERCPU_HASH;
}

bool is_devmap(__u32 type) { return type == BPF_MAP_TYPE_DEVMAP || type == BPF_MAP_TYPE_DEVMAP_HASH; }

struct Carried {
  size_t entries = 0;
  size_t dropped = 0; // no room for them in the new map
};

// Copies the entries of a map into one of the same type, key and value size but other
// max_entries. Per-CPU maps are copied with every CPU's value.
Carried carry_entries(int from, int to, const MapLayout& layout, const std::filesystem::path& pin) {
  size_t value_size = layout.value_size;
  if (is_per_cpu(layout.type)) {
    const int cpus = libbpf_num_possible_cpus();
    check_libbpf(cpus, "count possible CPUs");
    value_size = (value_size + 7) / 8 * 8 * static_cast<size_t>(cpus); // each CPU's value 8-byte aligned
  }
  std::vector<unsigned char> key(layout.key_size), next(layout.key_size), value(value_size);
  Carried carried;
  for (bool first = true; bpf_map_get_next_key(from, first ? nullptr : key.data(), next.data()) == 0; first = false) {
    key.swap(next);
    if (bpf_map_lookup_elem(from, key.data(), value.data()) < 0) {
      if (errno == ENOENT) continue; // an empty devmap slot
      throw_errno("read an entry of " + pin.string());
    }
    // A new array starts zeroed: slots that hold nothing need no copy and carry nothing.
    if (is_array(layout.type) && std::all_of(value.begin(), value.end(), [](unsigned char b) { return b == 0; }))
      continue;
    // A lookup reports a devmap entry's program by id where an update takes an fd; xdpfwd gives
    // its entries none, so only the ifindex is carried.
    if (is_devmap(layout.type) && value.size() > sizeof(__u32))
      std::fill(value.begin() + sizeof(__u32), value.end(), 0);
    if (bpf_map_update_elem(to, key.data(), value.data(), BPF_ANY) == 0)
      ++carried.entries;
    else if (errno == E2BIG) // a full hash map, or an index past the new array's end
      ++carried.dropped;
    else
      throw_errno("copy an entry of " + pin.string() + " into its new map");
  }
  if (errno != ENOENT) throw_errno("list the entries of " + pin.string());
  return carried;
}

// A pinned map of an earlier xdpfwd with another layout, moved aside for a new one.
struct Upgrade {
  bpf_map* map;
  MapLayout old_layout;
  UniqueFd old_map;
};

// One line per upgraded map: what changed, and what the new map got.
void carry_over(const Upgrade& upgrade, const std::filesystem::path& pin) {
  const MapLayout layout = layout_of(upgrade.map);
  const std::string change = describe_change(upgrade.old_layout, layout);
  const std::string kept = "the old map stays as " + aside(pin).string() + " until the upgrade completes";
  if (upgrade.old_layout.type != layout.type || upgrade.old_layout.key_size != layout.key_size ||
      upgrade.old_layout.value_size != layout.value_size) {
    spdlog::warn("upgrading pinned map {} ({}): its entries cannot be carried, the new map starts empty; {}",
                 pin.string(), change, kept);
    return;
  }
  const Carried carried = carry_entries(upgrade.old_map.get(), bpf_map__fd(upgrade.map), layout, pin);
  if (carried.dropped == 0)
    spdlog::info("upgrading pinned map {} ({}): entries carried into the new map: {}; {}", pin.string(), change,
                 carried.entries, kept);
  else
    spdlog::warn("upgrading pinned map {} ({}): entries carried into the new map: {}, dropped for want of room: {}; {}",
                 pin.string(), change, carried.entries, carried.dropped, kept);
}

} // namespace

void HostXdp::PinTransaction::move_aside(const std::string& name) {
  const auto pin = pin_dir_ / name;
  if (::rename(pin.c_str(), aside(pin).c_str()) < 0)
    throw_errno("move pinned map " + pin.string() + " aside to " + aside(pin).string());
  moved_aside_.push_back(name);
}

void HostXdp::PinTransaction::commit() {
  if (committed_) return;
  committed_ = true;
  if (moved_aside_.empty()) return;
  std::string removed;
  for (const auto& name : moved_aside_) {
    const auto old = aside(pin_dir_ / name);
    if (::unlink(old.c_str()) < 0 && errno != ENOENT)
      spdlog::error("removing the upgraded map's old pin {} failed: {}", old.string(), std::strerror(errno));
    else
      removed += (removed.empty() ? "" : ", ") + old.filename().string();
  }
  spdlog::info("upgrade of the pinned maps in {} complete: the old maps' pins ({}) are removed", pin_dir_.string(),
               removed);
}

// Puts the pin dir back as the start found it. rename(2) replaces the new map's pin in one
// step, so the path is never without a map for the previous program's users.
HostXdp::PinTransaction::~PinTransaction() {
  if (committed_) return;
  for (const auto& name : moved_aside_) {
    const auto pin = pin_dir_ / name;
    if (::rename(aside(pin).c_str(), pin.c_str()) < 0)
      spdlog::error("putting {} back at {} failed: {}", aside(pin).string(), pin.string(), std::strerror(errno));
    else
      spdlog::warn("upgrade undone: {} is the previous xdpfwd's map again", pin.string());
  }
  for (const auto& name : created_) {
    const auto pin = pin_dir_ / name;
    if (::unlink(pin.c_str()) < 0 && errno != ENOENT) spdlog::error("unpinning BPF map {} failed", pin.string());
  }
  std::error_code ignored;
  std::filesystem::remove(pin_dir_, ignored); // only if empty: never what others pinned there
}

void HostXdp::SkeletonDeleter::operator()(xdpfwd_bpf* skeleton) const { xdpfwd_bpf__destroy(skeleton); }

HostXdp::HostXdp(std::filesystem::path pin_dir, bool keep_entries) : pin_dir_(std::move(pin_dir)), pins_(pin_dir_) {
  prepare_pin_dir(pin_dir_);
  skeleton_.reset(xdpfwd_bpf__open());
  if (!skeleton_) throw_errno("open the xdpfwd BPF object");

  bool adopted = false;
  std::vector<Upgrade> upgrades;
  bpf_map* map;
  bpf_object__for_each_map(map, skeleton_->obj) {
    const std::string name = bpf_map__name(map);
    const auto pin = pin_dir_ / name;
    restore_unfinished_upgrade(pin);
    if (!std::filesystem::exists(pin)) {
      pins_.created(name);
      check_libbpf(bpf_map__set_pin_path(map, pin.c_str()), "set pin path " + pin.string());
      continue;
    }
    adopted = true;
    UniqueFd pinned(bpf_obj_get(pin.c_str()));
    if (!pinned) throw_errno("open pinned map " + pin.string());
    const MapLayout old_layout = layout_of(pinned.get(), pin);
    // Not libbpf's own check of a pinned map: it compares the flags too, and the kernel adds
    // BPF_F_RDONLY_PROG to a devmap's, so the pinned ingress_devs would never match.
    if (old_layout == layout_of(map)) {
      check_libbpf(bpf_map__reuse_fd(map, pinned.get()), "reuse pinned map " + pin.string());
      continue;
    }
    // An earlier xdpfwd's map, which its program may still be using: moved aside, not removed,
    // and libbpf creates and pins the new one at the freed path.
    pins_.move_aside(name);
    check_libbpf(bpf_map__set_pin_path(map, pin.c_str()), "set pin path " + pin.string());
    upgrades.push_back({map, old_layout, std::move(pinned)});
  }
  check_libbpf(xdpfwd_bpf__load(skeleton_.get()),
               "load the xdpfwd BPF program, maps in " + pin_dir_.string() +
                   " (libbpf's warnings above say why, the verifier's log included)");
  for (const auto& upgrade : upgrades) carry_over(upgrade, pin_dir_ / bpf_map__name(upgrade.map));

  program_ = xdp_program__from_bpf_obj(skeleton_->obj, nullptr);
  if (const long error = libxdp_get_error(program_); error != 0) {
    program_ = nullptr;
    throw_errno(static_cast<int>(-error), "prepare the xdpfwd program for libxdp");
  }
  if (adopted && keep_entries) {
    spdlog::info("adopting the BPF maps the previous run left pinned in {}, with their entries", pin_dir_.string());
  } else if (adopted) {
    spdlog::warn("adopting BPF maps a previous run left pinned in {}; their entries are replaced", pin_dir_.string());
    empty_adopted_maps();
  }
  spdlog::info("loaded the XDP program {}, maps pinned in {}", kProgramName, pin_dir_.string());
}

HostXdp::~HostXdp() {
  if (!released_) {
    detach_all();
    if (pins_.committed()) unpin(); // before, pins_ puts the pin dir back as the start found it
  }
  for (auto& attachment : attachments_)
    if (attachment.program != nullptr && attachment.program != program_) xdp_program__close(attachment.program);
  if (program_ != nullptr) xdp_program__close(program_);
}

void HostXdp::commit() {
  pins_.commit();
  for (auto& attachment : attachments_) attachment.previous.reset();
}

void HostXdp::empty_adopted_maps() {
  delete_all_keys<xdpfwd_service_key>(bpf_map__fd(skeleton_->maps.services));
  delete_all_keys<__u32>(bpf_map__fd(skeleton_->maps.ingress_devs));
}

void HostXdp::attach(const config::Interface& interface) {
  const std::string& name = interface.name;
  const int ifindex = static_cast<int>(::if_nametoindex(name.c_str()));
  if (ifindex == 0) throw_errno("attach xdp to " + name);

  // libxdp attaches one xdp_program object to one interface; further interfaces get a clone.
  const bool own_in_use =
      std::any_of(attachments_.begin(), attachments_.end(), [&](const auto& a) { return a.program == program_; });
  xdp_program* program = own_in_use ? xdp_program__clone(program_, 0) : program_;
  if (const long error = libxdp_get_error(program); error != 0)
    throw_errno(static_cast<int>(-error), "clone the xdpfwd program for " + name);

  // An xdpfwd program a previous run left (it restarted, or died) is replaced in place, so that
  // no frame meets the interface without one; never run twice.
  if (xdp_multiprog* attached = xdp_multiprog__get_from_ifindex(ifindex); libxdp_get_error(attached) == 0) {
    const xdp_attach_mode old_mode = xdp_multiprog__attach_mode(attached);
    xdp_program* legacy = xdp_multiprog__is_legacy(attached) ? xdp_multiprog__main_prog(attached) : nullptr;
    if (legacy != nullptr && std::strcmp(xdp_program__name(legacy), kProgramName) == 0) {
      // The skeleton's fd: libxdp's view of a program it did not load itself has none (-1),
      // and a replace with -1 would detach.
      LIBBPF_OPTS(bpf_xdp_attach_opts, options, .old_prog_fd = xdp_program__fd(legacy));
      const __u32 flags = XDP_FLAGS_REPLACE | (old_mode == XDP_MODE_SKB ? XDP_FLAGS_SKB_MODE : XDP_FLAGS_DRV_MODE);
      const int error = bpf_xdp_attach(ifindex, bpf_program__fd(skeleton_->progs.xdpfwd_xdp), flags, &options);
      // Kept until commit(), so that a start undone puts it back.
      UniqueFd previous(error == 0 && !pins_.committed() ? ::fcntl(xdp_program__fd(legacy), F_DUPFD_CLOEXEC, 0) : -1);
      xdp_multiprog__close(attached);
      if (program != program_) xdp_program__close(program);
      if (error < 0) throw_errno(-error, "replace the previous xdpfwd program on " + name);
      attachments_.push_back({name, ifindex, old_mode, nullptr, std::move(previous)});
      spdlog::info("{}: replaced the previous run's XDP program in place ({} mode)", name, mode_name(old_mode));
      return;
    }
    for (xdp_program* old = xdp_multiprog__next_prog(nullptr, attached); old != nullptr;
         old = xdp_multiprog__next_prog(old, attached)) {
      if (std::strcmp(xdp_program__name(old), kProgramName) != 0) continue;
      spdlog::warn("{}: removing the xdpfwd program a previous run left in libxdp's dispatcher", name);
      check_libbpf(xdp_program__detach(old, ifindex, old_mode, 0), "detach the previous xdpfwd program from " + name);
    }
    xdp_multiprog__close(attached);
  }

  auto try_attach = [&](xdp_attach_mode mode) {
    // libxdp tries its dispatcher first; where that fails, warn_if_alone() says what it means.
    QuietBpfLibraryWarnings quiet;
    return xdp_program__attach(program, ifindex, mode, 0);
  };
  xdp_attach_mode mode = interface.xdp_mode == config::XdpMode::Generic ? XDP_MODE_SKB : XDP_MODE_NATIVE;
  int error = try_attach(mode);
  if (error < 0 && interface.xdp_mode == config::XdpMode::Auto) {
    spdlog::warn("{}: native XDP failed ({}); falling back to generic mode, which is much slower", name,
                 libxdp_error(error));
    mode = XDP_MODE_SKB;
    error = try_attach(mode);
  }
  if (error < 0) {
    if (program != program_) xdp_program__close(program);
    throw std::system_error(-error, std::generic_category(),
                            "attach xdp to " + name + " in " + mode_name(mode) + " mode (" + libxdp_error(error) + ")");
  }
  attachments_.push_back({name, ifindex, mode, program, UniqueFd()});
  spdlog::info("{}: XDP program attached in {} mode", name, mode_name(mode));
  warn_if_alone(name, ifindex);
}

// libxdp shares an interface through its dispatcher, which needs the kernel to accept extension
// (freplace) programs; where it does not, our program is attached alone and others cannot join.
void HostXdp::warn_if_alone(const std::string& name, int ifindex) {
  xdp_multiprog* attached = xdp_multiprog__get_from_ifindex(ifindex);
  if (libxdp_get_error(attached) != 0) return;
  if (xdp_multiprog__is_legacy(attached))
    spdlog::warn("{}: libxdp could not use its multi-program dispatcher (see the libxdp debug log); xdpfwd is "
                 "attached as the interface's only XDP program",
                 name);
  xdp_multiprog__close(attached);
}

bool HostXdp::attached(const std::string& interface) const {
  return std::any_of(attachments_.begin(), attachments_.end(), [&](const auto& a) { return a.interface == interface; });
}

bool HostXdp::detach(const std::string& interface) {
  auto found = std::find_if(attachments_.begin(), attachments_.end(), [&](const auto& a) { return a.interface == interface; });
  if (found == attachments_.end()) return false;
  const int error = detach(*found);
  // The skeleton's own program stays open (attach() hands it out again); clones are closed.
  if (found->program != nullptr && found->program != program_) xdp_program__close(found->program);
  attachments_.erase(found);
  if (error < 0)
    throw std::system_error(-error, std::generic_category(), "detach xdp from " + interface + " (" + libxdp_error(error) + ")");
  spdlog::info("{}: XDP program detached", interface);
  return true;
}

// Detaches one attachment: through libxdp when it attached it, directly (only if our program is
// still the one there) when it was put in place of a previous run's, which goes back there
// if it is still held (a start being undone).
int HostXdp::detach(const Attachment& attachment) noexcept {
  if (attachment.program != nullptr)
    return xdp_program__detach(attachment.program, attachment.ifindex, static_cast<xdp_attach_mode>(attachment.mode), 0);
  LIBBPF_OPTS(bpf_xdp_attach_opts, options, .old_prog_fd = bpf_program__fd(skeleton_->progs.xdpfwd_xdp));
  const __u32 flags = XDP_FLAGS_REPLACE | (attachment.mode == XDP_MODE_SKB ? XDP_FLAGS_SKB_MODE : XDP_FLAGS_DRV_MODE);
  return bpf_xdp_attach(attachment.ifindex, attachment.previous ? attachment.previous.get() : -1, flags, &options);
}

void HostXdp::detach_all() noexcept {
  for (auto& attachment : attachments_) {
    const int error = detach(attachment);
    if (error < 0)
      spdlog::error("{}: detaching the XDP program failed: {}", attachment.interface, libxdp_error(error));
    else if (attachment.previous)
      spdlog::info("{}: the previous run's XDP program is back in place of this one", attachment.interface);
    else
      spdlog::info("{}: XDP program detached", attachment.interface);
    if (attachment.program != nullptr && attachment.program != program_) xdp_program__close(attachment.program);
  }
  attachments_.clear();
}

// Pinned by libbpf at load, or reused from an earlier run: the pin is the map's name either way.
void HostXdp::unpin() noexcept {
  bpf_map* map;
  bpf_object__for_each_map(map, skeleton_->obj) {
    const auto path = pin_dir_ / bpf_map__name(map);
    if (::unlink(path.c_str()) < 0 && errno != ENOENT) spdlog::error("unpinning BPF map {} failed", path.string());
  }
  std::error_code ignored;
  std::filesystem::remove(pin_dir_, ignored); // only if empty: never what others pinned there
}

void HostXdp::set_service(const config::IpAddress& address, const xdpfwd_service_value& target) {
  const auto key = service_key(address);
  if (bpf_map_update_elem(bpf_map__fd(skeleton_->maps.services), &key, &target, BPF_ANY) < 0)
    throw_errno("add service IP " + address.to_string() + " to the services map");
}

void HostXdp::remove_service(const config::IpAddress& address) {
  const auto key = service_key(address);
  if (bpf_map_delete_elem(bpf_map__fd(skeleton_->maps.services), &key) < 0 && errno != ENOENT)
    throw_errno("remove service IP " + address.to_string() + " from the services map");
}

void HostXdp::add_ingress_dev(int ifindex) {
  const __u32 key = static_cast<__u32>(ifindex);
  bpf_devmap_val value{};
  value.ifindex = key;
  if (bpf_map_update_elem(bpf_map__fd(skeleton_->maps.ingress_devs), &key, &value, BPF_ANY) < 0)
    throw_errno("add ifindex " + std::to_string(ifindex) + " to the ingress_devs map");
}

void HostXdp::remove_ingress_dev(int ifindex) {
  const __u32 key = static_cast<__u32>(ifindex);
  if (bpf_map_delete_elem(bpf_map__fd(skeleton_->maps.ingress_devs), &key) < 0 && errno != ENOENT)
    throw_errno("remove ifindex " + std::to_string(ifindex) + " from the ingress_devs map");
}

void HostXdp::reset_stats(std::uint32_t stats_index) {
  const int cpus = libbpf_num_possible_cpus();
  check_libbpf(cpus, "count possible CPUs");
  const std::vector<xdpfwd_service_stats> zeros(static_cast<size_t>(cpus));
  if (bpf_map_update_elem(bpf_map__fd(skeleton_->maps.service_stats), &stats_index, zeros.data(), BPF_ANY) < 0)
    throw_errno("reset service_stats[" + std::to_string(stats_index) + "]");
}

int HostXdp::service_stats_fd() const { return bpf_map__fd(skeleton_->maps.service_stats); }
int HostXdp::malformed_fd() const { return bpf_map__fd(skeleton_->maps.malformed); }
int HostXdp::ingress_devs_fd() const { return bpf_map__fd(skeleton_->maps.ingress_devs); }

} // namespace xdpfwd
