// The ingress's packet loop, on a thread of its own: batches of frames from eth0 (clients) and
// ovl0 (replicas) through Forwarding and out of the other interface. The frames come through
// AF_XDP sockets sharing one UMEM (no copy), or, where those cannot be created, AF_PACKET rings
// (frame_ports.hpp). Everything else reaches the loop as tasks run between batches, so the
// packet state has one owner and needs no locks.
#pragma once

#include "forwarding.hpp"
#include "frame_ports.hpp"
#include "ingress_xdp.hpp"
#include "neighbour_cache.hpp"
#include "xdpfwd/config.hpp"
#include "xdpfwd/unique_fd.hpp"

#include <atomic>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string_view>
#include <vector>

namespace xdpfwd::ingress {

class DataPath : private FrameHandler {
public:
  // The interfaces of an ingress netns: the service side (from the host's veth) and the
  // overlay. The static runtime names them eth0 and ovl0; in a Docker container Docker's
  // overlay interface is eth0 and the service veth another name.
  struct Interfaces {
    std::string client = "eth0";
    std::string overlay = "ovl0";
  };

  // Auto: AF_XDP, or AF_PACKET with a warning when AF_XDP sockets cannot be created.
  enum class Transport { Auto, AfXdp, AfPacket };
  // "auto", "af_xdp", "af_packet"; nullopt for anything else.
  static std::optional<Transport> parse_transport(std::string_view name);

  // Sets up the BPF programs and sockets in the calling thread's network namespace (the
  // ingress netns); throws std::system_error naming what failed.
  DataPath(const config::Ingress& ingress, const Interfaces& interfaces, Transport transport = Transport::Auto);
  ~DataPath();

  // The loop; returns when stop() was called.
  void run();
  // Thread-safe.
  void stop();
  // Runs task on the loop's thread between two batches; thread-safe.
  void post(std::function<void()> task);

  // Only on the loop's thread (from a posted task).
  void configure(const config::Ingress& ingress);
  void set_replica_health(const std::string& service, const config::IpAddress& replica, bool healthy) {
    forwarding_->set_replica_health(service, replica, healthy);
  }
  nlohmann::json status() const;

private:
  // A frame waiting for its replica's MAC (Action::Hold).
  struct Held {
    HeldFrame frame;
    HoldTicket ticket;
    balance::Timestamp since;
  };

  // AF_XDP sockets, or AF_PACKET rings with the tc programs that mark their frames.
  std::unique_ptr<FramePorts> make_ports(const Interfaces& interfaces, int client_ifindex, int overlay_ifindex,
                                         Transport transport);
  // FrameHandler, for ports_.
  Action handle(Side from, std::span<std::uint8_t> room, std::uint32_t& length) noexcept override;
  bool hold(const HeldFrame& frame) noexcept override;

  void run_tasks();
  // Sends the held frames whose replica is now resolved; gives up on those held too long.
  void release_held(balance::Timestamp now, bool give_up_all = false);
  void sync_service_ips(const config::Ingress& ingress);
  // The TCP ports the domain proxy terminates (terminated_ports): the XDP program passes them to
  // the ingress netns's kernel instead of the AF_XDP socket.
  void sync_stack_ports(const config::Ingress& ingress);

  xsk::IngressXdp xdp_;
  std::unique_ptr<FramePorts> ports_;
  std::unique_ptr<NeighbourCache> neighbours_;
  std::unique_ptr<Forwarding> forwarding_;
  std::vector<boost::asio::ip::address> service_ips_;
  std::vector<std::uint16_t> stack_ports_;
  std::uint64_t xdp_programs_restored_ = 0; // our XDP programs found removed and put back
  std::vector<Held> held_;       // reserved once: at most kMaxHeld
  balance::Timestamp batch_time_{}; // of the batch being forwarded (for hold())

  UniqueFd wake_; // eventfd: post() and stop() interrupt the poll
  std::atomic<bool> stopping_{false};
  std::mutex tasks_mutex_;
  std::vector<std::function<void()>> tasks_;
};

} // namespace xdpfwd::ingress
