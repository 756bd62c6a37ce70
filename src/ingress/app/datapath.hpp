// The ingress's packet loop, on a thread of its own: AF_XDP sockets on eth0 (clients) and ovl0
// (replicas) sharing one UMEM, batches of frames through Forwarding and out of the other socket
// without a copy. Everything else reaches it as tasks run between batches, so the packet state
// has one owner and needs no locks.
#pragma once

#include "forwarding.hpp"
#include "ingress_xdp.hpp"
#include "neighbour_cache.hpp"
#include "xdpfwd/config.hpp"
#include "xdpfwd/unique_fd.hpp"
#include "xsk_socket.hpp"

#include <atomic>
#include <functional>
#include <memory>
#include <mutex>
#include <vector>

namespace xdpfwd::ingress {

class DataPath {
public:
  // The interfaces of an ingress netns: the service side (from the host's veth) and the
  // overlay. The static runtime names them eth0 and ovl0; in a Docker container Docker's
  // overlay interface is eth0 and the service veth another name.
  struct Interfaces {
    std::string client = "eth0";
    std::string overlay = "ovl0";
  };

  // Sets up the XDP programs and sockets in the calling thread's network namespace (the
  // ingress netns); throws std::system_error naming what failed.
  DataPath(const config::Ingress& ingress, const Interfaces& interfaces);
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
    xsk::Frame frame;
    HoldTicket ticket;
    balance::Timestamp since;
  };

  void run_tasks();
  void forward_batch(xsk::XskSocket& from, bool from_clients, balance::Timestamp now);
  // Sends the held frames whose replica is now resolved; gives up on those held too long.
  void release_held(balance::Timestamp now, bool give_up_all = false);
  void sync_service_ips(const config::Ingress& ingress);
  // The TCP ports the domain proxy terminates (terminated_ports): the XDP program passes them to
  // the ingress netns's kernel instead of the AF_XDP socket.
  void sync_stack_ports(const config::Ingress& ingress);

  xsk::IngressXdp xdp_;
  std::shared_ptr<xsk::Umem> umem_;
  std::unique_ptr<xsk::XskSocket> client_;
  std::unique_ptr<xsk::XskSocket> overlay_;
  std::unique_ptr<NeighbourCache> neighbours_;
  std::unique_ptr<Forwarding> forwarding_;
  std::vector<boost::asio::ip::address> service_ips_;
  std::vector<std::uint16_t> stack_ports_;
  std::uint64_t tx_dropped_ = 0; // frames a full tx ring refused
  std::uint64_t xdp_programs_restored_ = 0; // our XDP programs found removed and put back
  std::vector<Held> held_;       // reserved once: at most kMaxHeld

  UniqueFd wake_; // eventfd: post() and stop() interrupt the poll
  std::atomic<bool> stopping_{false};
  std::mutex tasks_mutex_;
  std::vector<std::function<void()>> tasks_;
};

} // namespace xdpfwd::ingress
