#include "redirect_drops.hpp"

#include "redirect_drops_bpf.skel.h"
#include "xdpfwd/log.hpp"

#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <spdlog/spdlog.h>
#include <sys/stat.h>

#include <cstring>
#include <vector>

namespace xdpfwd {

void RedirectDrops::Deleter::operator()(redirect_drops_bpf* skeleton) const { redirect_drops_bpf__destroy(skeleton); }
void RedirectDrops::Deleter::operator()(bpf_link* link) const { bpf_link__destroy(link); }

RedirectDrops::RedirectDrops(int ingress_devs_fd) {
  struct stat netns {};
  bpf_map_info devmap{};
  std::uint32_t length = sizeof(devmap);
  if (::stat("/proc/self/ns/net", &netns) < 0 || bpf_obj_get_info_by_fd(ingress_devs_fd, &devmap, &length) < 0) {
    spdlog::warn("redirect drops are not counted: cannot identify the network namespace or the ingress_devs map: {}",
                 std::strerror(errno));
    return;
  }
  std::unique_ptr<redirect_drops_bpf, Deleter> skeleton(redirect_drops_bpf__open());
  if (!skeleton) {
    spdlog::warn("redirect drops are not counted: opening the BPF object failed: {}", std::strerror(errno));
    return;
  }
  skeleton->rodata->netns_inum = static_cast<__u32>(netns.st_ino);
  skeleton->rodata->ingress_devs_map_id = devmap.id;
  int error;
  {
    QuietBpfLibraryWarnings quiet; // a kernel without BTF fails here: one warning below says it
    error = redirect_drops_bpf__load(skeleton.get());
  }
  if (error < 0) {
    spdlog::warn("redirect drops are not counted: loading the tracepoint programs failed: {}", std::strerror(-error));
    return;
  }
  std::unique_ptr<bpf_link, Deleter> redirect_link(bpf_program__attach(skeleton->progs.count_redirect_errors));
  std::unique_ptr<bpf_link, Deleter> xmit_link(bpf_program__attach(skeleton->progs.count_xmit_drops));
  if (!redirect_link || !xmit_link) {
    spdlog::warn("redirect drops are not counted: attaching to the xdp tracepoints failed: {}", std::strerror(errno));
    return;
  }
  skeleton_ = std::move(skeleton);
  redirect_link_ = std::move(redirect_link);
  xmit_link_ = std::move(xmit_link);
}

RedirectDrops::~RedirectDrops() = default;

std::uint64_t RedirectDrops::dropped(int ifindex) const {
  if (!skeleton_) return 0;
  const int cpus = libbpf_num_possible_cpus();
  if (cpus <= 0) return 0;
  std::vector<std::uint64_t> per_cpu(static_cast<std::size_t>(cpus));
  const __u32 key = static_cast<__u32>(ifindex);
  if (bpf_map_lookup_elem(bpf_map__fd(skeleton_->maps.redirect_drops), &key, per_cpu.data()) < 0) return 0;
  std::uint64_t sum = 0;
  for (const auto count : per_cpu) sum += count;
  return sum;
}

} // namespace xdpfwd
