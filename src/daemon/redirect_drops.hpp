// Counts the frames the host XDP program redirected that an ingress veth refused (its peer runs
// no XDP program, or is down): bpf/redirect_drops.bpf.c on the xdp_redirect_err and
// xdp_devmap_xmit tracepoints. The counts live as long as this object (they start at zero with
// each daemon). Where the kernel cannot attach them (no BTF), the daemon runs without, and says
// so once.
#pragma once

#include <cstdint>
#include <memory>

struct redirect_drops_bpf;
struct bpf_link;

namespace xdpfwd {

class RedirectDrops {
public:
  // ingress_devs_fd: the host program's devmap, whose failed redirects are counted.
  explicit RedirectDrops(int ingress_devs_fd);
  ~RedirectDrops();
  RedirectDrops(const RedirectDrops&) = delete;
  RedirectDrops& operator=(const RedirectDrops&) = delete;

  // Frames a device of the daemon's netns refused, summed over CPUs; 0 when not counting.
  std::uint64_t dropped(int ifindex) const;

private:
  struct Deleter {
    void operator()(redirect_drops_bpf* skeleton) const;
    void operator()(bpf_link* link) const;
  };
  std::unique_ptr<redirect_drops_bpf, Deleter> skeleton_;
  std::unique_ptr<bpf_link, Deleter> redirect_link_, xmit_link_;
};

} // namespace xdpfwd
