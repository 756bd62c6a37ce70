// An AF_PACKET socket with one TPACKET_V2 ring mapped (PACKET_RX_RING or PACKET_TX_RING): the
// part PacketRx and PacketTx share. The ring is frame_count frames of frame_size bytes, one
// frame a block, each frame a tpacket2_hdr followed by the packet.
#pragma once

#include "xdpfwd/system_error.hpp"
#include "xdpfwd/unique_fd.hpp"

#include <linux/if_packet.h>

#include <cstddef>
#include <cstdint>
#include <string>

namespace xdpfwd::ingress::afpacket {

struct RingConfig {
  std::uint32_t frame_size = 4096; // a multiple of the page size; holds a 1500-byte frame and more
  std::uint32_t frame_count = 1024;
};

class PacketRing {
public:
  enum class Kind { Rx, Tx };

  // An unbound socket (protocol 0: it receives nothing until bound) with its ring mapped.
  // Throws std::system_error naming what (e.g. "rx ring on eth0") and the failing step.
  PacketRing(Kind kind, const RingConfig& config, const std::string& what);
  ~PacketRing();
  PacketRing(const PacketRing&) = delete;
  PacketRing& operator=(const PacketRing&) = delete;

  int fd() const noexcept { return fd_.get(); }
  const std::string& what() const noexcept { return what_; }
  tpacket2_hdr* frame(std::uint32_t index) const noexcept {
    return reinterpret_cast<tpacket2_hdr*>(area_ + std::size_t{index} * config_.frame_size);
  }
  std::uint32_t frame_count() const noexcept { return config_.frame_count; }
  std::uint32_t frame_size() const noexcept { return config_.frame_size; }
  // Binds the socket to ifindex for ethertype (host order; 0 for tx only).
  void bind(int ifindex, std::uint16_t ethertype);

private:
  RingConfig config_;
  std::string what_;
  UniqueFd fd_;
  std::uint8_t* area_ = nullptr;
  std::size_t area_size_ = 0;
};

// "eth0", or "ifindex 7" when the interface has gone: for messages.
std::string interface_name(int ifindex);

// tp_status is shared with the kernel: read and written with acquire/release order.
std::uint32_t load_status(const tpacket2_hdr* header) noexcept;
void store_status(tpacket2_hdr* header, std::uint32_t status) noexcept;

} // namespace xdpfwd::ingress::afpacket
