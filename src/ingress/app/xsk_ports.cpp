#include "xsk_ports.hpp"

#include <array>
#include <cstring>

namespace xdpfwd::ingress {
namespace {

constexpr std::size_t kBatch = 64;

xsk::Frame frame_of(const HeldFrame& held) { return {held.id, held.len}; }

} // namespace

XskPorts::XskPorts(const xsk::IngressXdp& xdp, const std::string& client, const std::string& overlay)
    : umem_(xsk::Umem::create()),
      client_(std::make_unique<xsk::XskSocket>(umem_, client, 0, xdp.client_xsks_fd())),
      overlay_(std::make_unique<xsk::XskSocket>(umem_, overlay, 0, xdp.overlay_xsks_fd())) {}

void XskPorts::add_to(xsk::Poller& poller) {
  client_slot_ = poller.add(client_->fd());
  overlay_slot_ = poller.add(overlay_->fd());
}

void XskPorts::set_events(xsk::Poller& poller) noexcept {
  poller.set_events(client_slot_, client_->tx_pending() ? POLLIN | POLLOUT : POLLIN);
  poller.set_events(overlay_slot_, overlay_->tx_pending() ? POLLIN | POLLOUT : POLLIN);
}

void XskPorts::forward(const xsk::Poller& poller, FrameHandler& handler) noexcept {
  if (poller.readable(client_slot_)) forward_batch(*client_, Side::Client, handler);
  if (poller.readable(overlay_slot_)) forward_batch(*overlay_, Side::Overlay, handler);
}

// Each frame is rewritten in place and sent on the socket its action names (one UMEM: no
// copy), or returned to the UMEM.
void XskPorts::forward_batch(xsk::XskSocket& from, Side side, FrameHandler& handler) noexcept {
  std::array<xsk::Frame, kBatch> frames;
  const std::size_t received = from.receive(frames);
  if (received == 0) return;
  std::array<xsk::Frame, kBatch> to_overlay, to_client, done;
  std::size_t overlay_count = 0, client_count = 0, done_count = 0;
  const std::uint32_t frame_room = umem_->config().frame_size; // bytes from a frame's start to its end
  for (std::size_t i = 0; i < received; ++i) {
    xsk::Frame& frame = frames[i];
    std::span<std::uint8_t> room(from.data(frame), frame_room - (frame.addr % frame_room));
    const Action action = handler.handle(side, room, frame.len);
    if (action == Action::ToOverlay) to_overlay[overlay_count++] = frame;
    else if (action == Action::ToClient) to_client[client_count++] = frame;
    else if (action == Action::Hold && handler.hold({frame.addr, frame.len})) continue;
    else done[done_count++] = frame;
  }
  auto send = [&](xsk::XskSocket& socket, std::span<const xsk::Frame> batch) {
    const std::size_t sent = socket.transmit(batch);
    tx_dropped_ += batch.size() - sent;
    socket.recycle(batch.subspan(sent));
  };
  send(*overlay_, std::span(to_overlay).first(overlay_count));
  send(*client_, std::span(to_client).first(client_count));
  from.recycle(std::span(done).first(done_count));
}

void XskPorts::flush() noexcept {
  client_->flush();
  overlay_->flush();
}

bool XskPorts::send_held(const HeldFrame& held, const packet::nat::Mac& mac) noexcept {
  const xsk::Frame frame = frame_of(held);
  std::memcpy(overlay_->data(frame), mac.data(), mac.size()); // the Ethernet destination
  return overlay_->transmit({&frame, 1}) == 1;
}

void XskPorts::drop_held(const HeldFrame& held) noexcept { umem_->release(held.id); }

nlohmann::json XskPorts::status() {
  nlohmann::json status = {{"tx_dropped", tx_dropped_}};
  // The kernel's drops at the AF_XDP sockets: rings full (the inspector fell behind).
  for (const auto& [name, socket] : {std::pair{"client_socket", client_.get()}, std::pair{"overlay_socket", overlay_.get()}}) {
    const xdp_statistics statistics = socket->statistics();
    status[name] = {{"rx_dropped", statistics.rx_dropped},
                    {"rx_ring_full", statistics.rx_ring_full},
                    {"rx_fill_ring_empty", statistics.rx_fill_ring_empty_descs},
                    {"rx_invalid", statistics.rx_invalid_descs},
                    {"tx_invalid", statistics.tx_invalid_descs},
                    {"tx_ring_empty", statistics.tx_ring_empty_descs}};
  }
  return status;
}

} // namespace xdpfwd::ingress
