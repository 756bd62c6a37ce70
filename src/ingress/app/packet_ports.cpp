#include "packet_ports.hpp"

#include "ingress_abi.h"
#include "xdpfwd/system_error.hpp"
#include "xdpfwd/unique_fd.hpp"

#include <linux/ethtool.h>
#include <linux/if_ether.h>
#include <linux/sockios.h>
#include <spdlog/spdlog.h>
#include <sys/ioctl.h>
#include <sys/socket.h>

#include <array>
#include <cstring>
#include <string>

namespace xdpfwd::ingress {
namespace {

constexpr std::size_t kBatch = 64;
constexpr std::uint32_t kHeldSlot = afpacket::RingConfig{}.frame_size; // holds any rx slot's frame

void turn_gro_off(int ifindex) {
  const std::string name = afpacket::interface_name(ifindex);
  UniqueFd sock(::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0));
  if (!sock) throw_errno("socket for SIOCETHTOOL");
  ethtool_value value{ETHTOOL_SGRO, 0};
  ifreq request{};
  std::strncpy(request.ifr_name, name.c_str(), IF_NAMESIZE - 1);
  request.ifr_data = reinterpret_cast<char*>(&value);
  if (::ioctl(sock.get(), SIOCETHTOOL, &request) < 0) throw_errno("turn GRO off on " + name);
}

nlohmann::json rx_status(afpacket::PacketRx& rx) {
  const auto statistics = rx.statistics();
  return {{"received", statistics.packets}, {"ring_full", statistics.drops}, {"truncated", rx.truncated()}};
}

} // namespace

PacketPorts::Port::Port(int ifindex)
    : rx4(ifindex, ETH_P_IP, XDPFWD_INGRESS_INSPECTOR_MARK), rx6(ifindex, ETH_P_IPV6, XDPFWD_INGRESS_INSPECTOR_MARK),
      tx(ifindex) {}

PacketPorts::PacketPorts(int client_ifindex, int overlay_ifindex, std::size_t max_held)
    : client_(client_ifindex), overlay_(overlay_ifindex), held_area_(max_held * kHeldSlot) {
  // Before the programs that send frames here are attached (DataPath does that last).
  turn_gro_off(client_ifindex);
  turn_gro_off(overlay_ifindex);
  held_free_.reserve(max_held);
  for (std::size_t slot = max_held; slot-- > 0;) held_free_.push_back(static_cast<std::uint32_t>(slot));
  spdlog::info("AF_PACKET rings on {} and {}; GRO turned off on both", afpacket::interface_name(client_ifindex),
               afpacket::interface_name(overlay_ifindex));
}

void PacketPorts::add_to(xsk::Poller& poller) {
  for (Port* port : {&client_, &overlay_}) {
    port->rx4_slot = poller.add(port->rx4.fd());
    port->rx6_slot = poller.add(port->rx6.fd());
  }
}

// Nothing to wait for on transmit: flush() hands every queued frame over, and a full ring is
// counted and dropped, not waited on.
void PacketPorts::set_events(xsk::Poller&) noexcept {}

void PacketPorts::forward(const xsk::Poller& poller, FrameHandler& handler) noexcept {
  for (const Side side : {Side::Client, Side::Overlay}) {
    Port& from = port(side);
    if (poller.readable(from.rx4_slot)) forward_batch(from.rx4, side, handler);
    if (poller.readable(from.rx6_slot)) forward_batch(from.rx6, side, handler);
  }
}

void PacketPorts::forward_batch(afpacket::PacketRx& from, Side side, FrameHandler& handler) noexcept {
  std::array<afpacket::RxFrame, kBatch> frames;
  const std::size_t received = from.receive(frames);
  for (std::size_t i = 0; i < received; ++i) {
    const afpacket::RxFrame& frame = frames[i];
    std::uint32_t length = frame.len;
    const std::span<std::uint8_t> room(frame.data, frame.room);
    const Action action = handler.handle(side, room, length);
    if (action == Action::ToOverlay || action == Action::ToClient) {
      transmit(action == Action::ToOverlay ? Side::Overlay : Side::Client, room.first(length));
    } else if (action == Action::Hold && !held_free_.empty()) {
      // As many slots as the handler holds frames at most (it refuses more): never empty here.
      const std::uint32_t slot = held_free_.back();
      if (handler.hold({slot, length})) {
        std::memcpy(held_bytes(slot).data(), frame.data, length); // length <= room < kHeldSlot
        held_free_.pop_back();
      }
    }
  }
  from.release();
}

bool PacketPorts::transmit(Side side, std::span<const std::uint8_t> frame) noexcept {
  afpacket::PacketTx& tx = port(side).tx;
  const std::span<std::uint8_t> slot = tx.slot();
  if (slot.size() < frame.size()) {
    ++tx_dropped_;
    return false;
  }
  std::memcpy(slot.data(), frame.data(), frame.size());
  tx.commit(static_cast<std::uint32_t>(frame.size()));
  return true;
}

void PacketPorts::flush() noexcept {
  client_.tx.kick();
  overlay_.tx.kick();
}

std::span<std::uint8_t> PacketPorts::held_bytes(std::uint64_t id) noexcept {
  return std::span(held_area_).subspan(id * kHeldSlot, kHeldSlot);
}

bool PacketPorts::send_held(const HeldFrame& frame, const packet::nat::Mac& mac) noexcept {
  const auto bytes = held_bytes(frame.id).first(frame.len);
  std::memcpy(bytes.data(), mac.data(), mac.size()); // the Ethernet destination
  const bool sent = transmit(Side::Overlay, bytes);
  if (sent) drop_held(frame);
  return sent;
}

void PacketPorts::drop_held(const HeldFrame& frame) noexcept { held_free_.push_back(static_cast<std::uint32_t>(frame.id)); }

nlohmann::json PacketPorts::status() {
  nlohmann::json status = {{"tx_dropped", tx_dropped_}};
  for (const auto& [name, port] : {std::pair{"client_socket", &client_}, std::pair{"overlay_socket", &overlay_}}) {
    status[name] = {{"ipv4", rx_status(port->rx4)},
                    {"ipv6", rx_status(port->rx6)},
                    {"tx_ring_full", port->tx.ring_full()},
                    {"tx_kick_errors", port->tx.kick_errors()},
                    {"tx_wrong_format", port->tx.wrong_format()}};
  }
  return status;
}

} // namespace xdpfwd::ingress
