// The data path's frame transport, one of two: AF_XDP sockets sharing one UMEM (XskPorts, the
// normal case: frames cross from one interface to the other without a copy) or AF_PACKET rings
// (PacketPorts, where AF_XDP sockets cannot be created: one copy per frame). DataPath's loop
// decides what becomes of each frame (FrameHandler); a transport owns the frames' memory,
// receives them in batches and sends them where the handler says.
#pragma once

#include "forwarding.hpp"
#include "poller.hpp"

#include <nlohmann/json.hpp>

#include <cstdint>
#include <span>
#include <string_view>

namespace xdpfwd::ingress {

enum class Side : std::uint8_t { Client, Overlay };

// A frame a transport keeps for Action::Hold, until DataPath sends or drops it.
struct HeldFrame {
  std::uint64_t id = 0; // the transport's own handle
  std::uint32_t len = 0;
};

class FrameHandler {
public:
  // The frame is room.first(length); the handler may rewrite it in place and change length
  // (within room).
  virtual Action handle(Side from, std::span<std::uint8_t> room, std::uint32_t& length) noexcept = 0;
  // Whether DataPath takes a frame handle() answered Action::Hold for; false: the transport
  // drops it (DataPath counted that).
  virtual bool hold(const HeldFrame& frame) noexcept = 0;

protected:
  ~FrameHandler() = default;
};

class FramePorts {
public:
  virtual ~FramePorts() = default;

  virtual std::string_view name() const noexcept = 0; // "AF_XDP", "AF_PACKET"
  // Adds the descriptors to wait on to the loop's poller (once, before the loop).
  virtual void add_to(xsk::Poller& poller) = 0;
  // Before each wait: POLLOUT where a transmission is pending.
  virtual void set_events(xsk::Poller& poller) noexcept = 0;
  // One batch from each side the poller found readable, through handler, out where it says.
  virtual void forward(const xsk::Poller& poller, FrameHandler& handler) noexcept = 0;
  // Once per loop round: pushes what was queued, takes completions back.
  virtual void flush() noexcept = 0;
  // A held frame out to the overlay, its Ethernet destination set to mac; false when the
  // transmit ring is full (the caller drops it then).
  virtual bool send_held(const HeldFrame& frame, const packet::nat::Mac& mac) noexcept = 0;
  virtual void drop_held(const HeldFrame& frame) noexcept = 0;
  // The transport's counters (socket statistics, frames a full ring refused).
  virtual nlohmann::json status() = 0;
};

} // namespace xdpfwd::ingress
