#include "packet_tx.hpp"

#include <sys/socket.h>

namespace xdpfwd::ingress::afpacket {
namespace {

// Without PACKET_TX_HAS_OFF a TPACKET_V2 tx frame starts right after its aligned header.
constexpr std::uint32_t kDataOffset = TPACKET_ALIGN(sizeof(tpacket2_hdr));

} // namespace

PacketTx::PacketTx(int ifindex, const RingConfig& config)
    : ring_(PacketRing::Kind::Tx, config, "AF_PACKET tx ring on " + interface_name(ifindex)) {
  const int bypass = 1;
  if (::setsockopt(ring_.fd(), SOL_PACKET, PACKET_QDISC_BYPASS, &bypass, sizeof bypass) < 0)
    throw_errno(ring_.what() + ": PACKET_QDISC_BYPASS");
  ring_.bind(ifindex, 0); // protocol 0: sends only; the kernel reads each frame's EtherType
}

std::span<std::uint8_t> PacketTx::slot() noexcept {
  tpacket2_hdr* header = ring_.frame(head_);
  const std::uint32_t status = load_status(header);
  if (status == TP_STATUS_WRONG_FORMAT) {
    ++wrong_format_;
    store_status(header, TP_STATUS_AVAILABLE);
  } else if (status != TP_STATUS_AVAILABLE) {
    ++ring_full_;
    return {};
  }
  return {reinterpret_cast<std::uint8_t*>(header) + kDataOffset, ring_.frame_size() - kDataOffset};
}

void PacketTx::commit(std::uint32_t length) noexcept {
  tpacket2_hdr* header = ring_.frame(head_);
  header->tp_len = length;
  store_status(header, TP_STATUS_SEND_REQUEST);
  head_ = (head_ + 1) % ring_.frame_count();
  ++pending_;
}

void PacketTx::kick() noexcept {
  if (pending_ == 0) return;
  pending_ = 0;
  if (::sendto(ring_.fd(), nullptr, 0, MSG_DONTWAIT, nullptr, 0) < 0) ++kick_errors_;
}

} // namespace xdpfwd::ingress::afpacket
