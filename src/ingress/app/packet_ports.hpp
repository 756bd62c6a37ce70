// The AF_PACKET transport, for where AF_XDP sockets cannot be created: on each interface an rx
// ring for IPv4 and one for IPv6 (sockets bound to an EtherType) and a tx ring. The tc ingress
// programs (IngressXdp::attach_*_tc) mark the inspector's frames, which the rx sockets' filter
// accepts, and make the stack drop them. A frame is rewritten in its rx slot and copied once,
// into the tx ring of the interface it leaves through; a held frame is copied aside, so the rx
// ring moves on. GRO is turned off on both interfaces: it would merge a flow's segments into
// frames larger than a ring slot and the overlay MTU.
#pragma once

#include "frame_ports.hpp"
#include "packet_rx.hpp"
#include "packet_tx.hpp"

#include <cstdint>
#include <vector>

namespace xdpfwd::ingress {

class PacketPorts final : public FramePorts {
public:
  // Throws std::system_error naming the interface and what failed. max_held: frames kept aside
  // for Action::Hold at most.
  PacketPorts(int client_ifindex, int overlay_ifindex, std::size_t max_held);

  std::string_view name() const noexcept override { return "AF_PACKET"; }
  void add_to(xsk::Poller& poller) override;
  void set_events(xsk::Poller& poller) noexcept override;
  void forward(const xsk::Poller& poller, FrameHandler& handler) noexcept override;
  void flush() noexcept override;
  bool send_held(const HeldFrame& frame, const packet::nat::Mac& mac) noexcept override;
  void drop_held(const HeldFrame& frame) noexcept override;
  nlohmann::json status() override;

private:
  struct Port {
    Port(int ifindex);
    afpacket::PacketRx rx4;
    afpacket::PacketRx rx6;
    afpacket::PacketTx tx;
    std::size_t rx4_slot = 0, rx6_slot = 0; // in the poller
  };

  void forward_batch(afpacket::PacketRx& from, Side side, FrameHandler& handler) noexcept;
  // Copies a frame into the tx ring of side; false (counted) when the ring is full.
  bool transmit(Side side, std::span<const std::uint8_t> frame) noexcept;
  Port& port(Side side) noexcept { return side == Side::Client ? client_ : overlay_; }
  std::span<std::uint8_t> held_bytes(std::uint64_t id) noexcept;

  Port client_;
  Port overlay_;
  std::vector<std::uint8_t> held_area_;  // max_held slots of kHeldSlot bytes
  std::vector<std::uint32_t> held_free_; // free slots of held_area_
  std::uint64_t tx_dropped_ = 0;         // frames a full tx ring refused
};

} // namespace xdpfwd::ingress
