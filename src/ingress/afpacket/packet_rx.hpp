// Receives frames of one EtherType on one interface through a mapped AF_PACKET ring, in batches
// and without a copy: a frame stays in its ring slot (and may be rewritten there) until
// release(). With a mark, a socket filter takes only the packets carrying it (skb->mark).
#pragma once

#include "packet_ring.hpp"

#include <cstdint>
#include <optional>
#include <span>

namespace xdpfwd::ingress::afpacket {

struct RxFrame {
  std::uint8_t* data = nullptr; // the Ethernet header, in the ring
  std::uint32_t len = 0;
  std::uint32_t room = 0; // bytes from data to the slot's end: how far the frame may grow
};

class PacketRx {
public:
  struct Statistics {
    std::uint64_t packets = 0; // received by the socket, dropped ones included
    std::uint64_t drops = 0;   // dropped because the ring was full
  };

  // Throws std::system_error naming the interface and the failing step.
  PacketRx(int ifindex, std::uint16_t ethertype, std::optional<std::uint32_t> mark, const RingConfig& config = {});

  int fd() const noexcept { return ring_.fd(); }
  // The frames ready at the ring's head, at most frames.size(); frames longer than a slot are
  // released at once and counted (truncated()). Each receive() is followed by release().
  std::size_t receive(std::span<RxFrame> frames) noexcept;
  // Gives the slots the last receive() walked back to the kernel.
  void release() noexcept;
  std::uint64_t truncated() const noexcept { return truncated_; }
  // Totals since the socket was made (the kernel's PACKET_STATISTICS resets on each read).
  Statistics statistics() noexcept;

private:
  PacketRing ring_;
  std::uint32_t head_ = 0;   // the next slot to look at
  std::uint32_t walked_ = 0; // slots the last receive() took, from head_
  std::uint64_t truncated_ = 0;
  Statistics totals_;
};

} // namespace xdpfwd::ingress::afpacket
