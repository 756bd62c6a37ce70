// An AF_XDP socket bound to one rx queue of one interface, on a (possibly shared) Umem, with its
// four rings. Created through libxdp with XSK_LIBXDP_FLAGS__INHIBIT_PROG_LOAD (our own program,
// IngressXdp, redirects into it) and entered into an XSKMAP at key queue. Copy mode by default:
// what veth (native XDP) and VXLAN (generic XDP) support.
//
// Batched and allocation-free on the packet path:
//   receive(frames)   peeks up to frames.size() rx descriptors, hands them to the caller and
//                     tops the fill ring up from the UMEM's free frames;
//   transmit(frames)  queues frames of the UMEM (received on any socket of it, or built in
//                     Umem::allocate()d frames) on the tx ring and kicks the kernel when the ring
//                     says it needs a wakeup (always, in copy mode);
//   flush()           returns completed tx frames to the free stack, tops the fill ring up and
//                     kicks what the kernel has not sent yet: call it once per event-loop round.
// Frames the caller is done with go back with Umem::release (or recycle()). Frames held by a
// socket's rings when it is destroyed are not reused: replace sockets together with their UMEM.
#pragma once

#include "umem.hpp"

#include <linux/if_xdp.h>

#include <cstdint>
#include <memory>
#include <span>
#include <string>

namespace xdpfwd::ingress::xsk {

// A frame in the UMEM: addr is where its data starts (Umem::data(addr)), len its length.
struct Frame {
  std::uint64_t addr = 0;
  std::uint32_t len = 0;
};

struct XskSocketConfig {
  std::uint32_t rx_size = 2048; // powers of two
  std::uint32_t tx_size = 2048;
  bool zero_copy = false; // XDP_ZEROCOPY instead of XDP_COPY (drivers with AF_XDP support)
};

class XskSocket {
public:
  // Throws std::system_error ("create an AF_XDP socket on eth0 queue 0: ..."). xskmap_fd < 0:
  // not entered into any map.
  XskSocket(std::shared_ptr<Umem> umem, const std::string& ifname, std::uint32_t queue, int xskmap_fd,
            const XskSocketConfig& config = {});
  XskSocket(XskSocket&&) noexcept;
  XskSocket& operator=(XskSocket&&) noexcept;
  XskSocket(const XskSocket&) = delete;
  XskSocket& operator=(const XskSocket&) = delete;
  ~XskSocket();

  int fd() const noexcept;
  Umem& umem() const noexcept;
  std::uint8_t* data(const Frame& frame) const noexcept { return umem().data(frame.addr); }

  // Up to frames.size() received frames, now the caller's; 0 when the rx ring is empty.
  std::size_t receive(std::span<Frame> frames) noexcept;
  // Frames the caller is done with, back to the UMEM.
  void recycle(std::span<const Frame> frames) noexcept;
  // Queues frames (the front of the span) on the tx ring; returns how many. The ones not queued
  // (ring full) stay the caller's: retry after flush(), or release them.
  std::size_t transmit(std::span<const Frame> frames) noexcept;
  void flush() noexcept;

  // Frames submitted for transmission and not completed yet.
  std::uint32_t tx_in_flight() const noexcept;
  // Whether the kernel still has descriptors on the tx ring: poll for POLLOUT then.
  bool tx_pending() const noexcept;
  // The kernel's counters of this socket (rx_dropped, rx_ring_full, rx_fill_ring_empty_descs, ...).
  xdp_statistics statistics() const;
  // Kick attempts that failed other than with EAGAIN (e.g. ENETDOWN, ENOBUFS).
  std::uint64_t tx_kick_errors() const noexcept;

private:
  struct State;
  std::unique_ptr<State> state_;
};

} // namespace xdpfwd::ingress::xsk
