// Sends frames on one interface through a mapped AF_PACKET ring: a frame is written into a slot,
// committed, and the committed ones leave with one kick() (a send with no data) per batch. The
// queueing discipline is bypassed, as AF_XDP's transmit does.
#pragma once

#include "packet_ring.hpp"

#include <cstdint>
#include <span>

namespace xdpfwd::ingress::afpacket {

class PacketTx {
public:
  // Throws std::system_error naming the interface and the failing step.
  explicit PacketTx(int ifindex, const RingConfig& config = {});

  int fd() const noexcept { return ring_.fd(); }
  // The next free slot to write a frame into; empty (and counted) when the kernel still holds
  // every slot.
  std::span<std::uint8_t> slot() noexcept;
  // Queues the frame written into slot(), length bytes of it.
  void commit(std::uint32_t length) noexcept;
  // Hands the queued frames to the interface.
  void kick() noexcept;
  std::uint32_t pending() const noexcept { return pending_; }
  std::uint64_t ring_full() const noexcept { return ring_full_; }
  std::uint64_t kick_errors() const noexcept { return kick_errors_; }
  std::uint64_t wrong_format() const noexcept { return wrong_format_; } // frames the kernel refused

private:
  PacketRing ring_;
  std::uint32_t head_ = 0;
  std::uint32_t pending_ = 0;
  std::uint64_t ring_full_ = 0;
  std::uint64_t kick_errors_ = 0;
  std::uint64_t wrong_format_ = 0;
};

} // namespace xdpfwd::ingress::afpacket
