#include "host_xdp.hpp"

#include "xdpfwd/log.hpp"
#include "xdpfwd/system_error.hpp"
#include "xdpfwd/unique_fd.hpp"
#include "xdpfwd/xdp_maps.hpp"
#include "xdpfwd_bpf.skel.h"

#include <bpf/bpf.h>
#include <linux/if_link.h>
#include <linux/magic.h>
#include <net/if.h>
#include <spdlog/spdlog.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <xdp/libxdp.h>

#include <algorithm>
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

} // namespace

// libbpf's own check of a pinned map compares the flags too, and the kernel adds
// BPF_F_RDONLY_PROG to a devmap's: the pinned ingress_devs would never match. The layout is what
// matters (a map of another layout is an older xdpfwd's, and is refused here, loudly).
void HostXdp::reuse_pinned(bpf_map* map, const std::filesystem::path& path) {
  const UniqueFd fd(bpf_obj_get(path.c_str()));
  if (!fd) throw_errno("open pinned map " + path.string());
  bpf_map_info info{};
  __u32 length = sizeof(info);
  check_libbpf(bpf_obj_get_info_by_fd(fd.get(), &info, &length), "read pinned map " + path.string());
  if (info.type != bpf_map__type(map) || info.key_size != bpf_map__key_size(map) ||
      info.value_size != bpf_map__value_size(map) || info.max_entries != bpf_map__max_entries(map))
    throw std::runtime_error("pinned map " + path.string() + " has another layout than this xdpfwd's (type " +
                             std::to_string(info.type) + ", key " + std::to_string(info.key_size) + ", value " +
                             std::to_string(info.value_size) + ", entries " + std::to_string(info.max_entries) +
                             "): left by another version? Remove it to start afresh");
  check_libbpf(bpf_map__reuse_fd(map, fd.get()), "reuse pinned map " + path.string());
}

void HostXdp::SkeletonDeleter::operator()(xdpfwd_bpf* skeleton) const { xdpfwd_bpf__destroy(skeleton); }

HostXdp::HostXdp(std::filesystem::path pin_dir, bool keep_entries) : pin_dir_(std::move(pin_dir)) {
  prepare_pin_dir(pin_dir_);
  skeleton_.reset(xdpfwd_bpf__open());
  if (!skeleton_) throw_errno("open the xdpfwd BPF object");

  bool adopted = false;
  bpf_map* map;
  bpf_object__for_each_map(map, skeleton_->obj) {
    const auto path = pin_dir_ / bpf_map__name(map);
    if (std::filesystem::exists(path)) {
      reuse_pinned(map, path);
      adopted = true;
    } else {
      check_libbpf(bpf_map__set_pin_path(map, path.c_str()), "set pin path " + path.string());
    }
  }
  check_libbpf(xdpfwd_bpf__load(skeleton_.get()), "load the xdpfwd BPF program (pins in " + pin_dir_.string() + ")");

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
    unpin();
  }
  for (auto& attachment : attachments_)
    if (attachment.program != nullptr && attachment.program != program_) xdp_program__close(attachment.program);
  if (program_ != nullptr) xdp_program__close(program_);
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
      xdp_multiprog__close(attached);
      if (program != program_) xdp_program__close(program);
      if (error < 0) throw_errno(-error, "replace the previous xdpfwd program on " + name);
      attachments_.push_back({name, ifindex, old_mode, nullptr});
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
  attachments_.push_back({name, ifindex, mode, program});
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
// still the one there) when it was put in place of a previous run's.
int HostXdp::detach(const Attachment& attachment) noexcept {
  if (attachment.program != nullptr)
    return xdp_program__detach(attachment.program, attachment.ifindex, static_cast<xdp_attach_mode>(attachment.mode), 0);
  LIBBPF_OPTS(bpf_xdp_attach_opts, options, .old_prog_fd = bpf_program__fd(skeleton_->progs.xdpfwd_xdp));
  const __u32 flags = XDP_FLAGS_REPLACE | (attachment.mode == XDP_MODE_SKB ? XDP_FLAGS_SKB_MODE : XDP_FLAGS_DRV_MODE);
  return bpf_xdp_detach(attachment.ifindex, flags, &options);
}

void HostXdp::detach_all() noexcept {
  for (auto& attachment : attachments_) {
    const int error = detach(attachment);
    if (error < 0)
      spdlog::error("{}: detaching the XDP program failed: {}", attachment.interface, libxdp_error(error));
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

} // namespace xdpfwd
