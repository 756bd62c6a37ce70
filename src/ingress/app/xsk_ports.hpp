// The AF_XDP transport: a socket on each interface's rx queue 0, entered in the XDP programs'
// XSKMAPs, both on one UMEM, so a frame received on one socket is rewritten in place and
// transmitted on the other without a copy.
#pragma once

#include "frame_ports.hpp"
#include "ingress_xdp.hpp"
#include "xsk_socket.hpp"

#include <memory>
#include <string>

namespace xdpfwd::ingress {

class XskPorts final : public FramePorts {
public:
  // Throws std::system_error when a socket cannot be created (no AF_XDP: the caller falls back).
  XskPorts(const xsk::IngressXdp& xdp, const std::string& client, const std::string& overlay);

  std::string_view name() const noexcept override { return "AF_XDP"; }
  void add_to(xsk::Poller& poller) override;
  void set_events(xsk::Poller& poller) noexcept override;
  void forward(const xsk::Poller& poller, FrameHandler& handler) noexcept override;
  void flush() noexcept override;
  bool send_held(const HeldFrame& frame, const packet::nat::Mac& mac) noexcept override;
  void drop_held(const HeldFrame& frame) noexcept override;
  nlohmann::json status() override;

private:
  void forward_batch(xsk::XskSocket& from, Side side, FrameHandler& handler) noexcept;

  std::shared_ptr<xsk::Umem> umem_;
  std::unique_ptr<xsk::XskSocket> client_;
  std::unique_ptr<xsk::XskSocket> overlay_;
  std::size_t client_slot_ = 0;
  std::size_t overlay_slot_ = 0;
  std::uint64_t tx_dropped_ = 0; // frames a full tx ring refused
};

} // namespace xdpfwd::ingress
