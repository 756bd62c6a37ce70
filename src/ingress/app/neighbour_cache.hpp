// Link-layer addresses of the replicas, as the kernel of the ingress netns resolves them on the
// overlay (ARP/ND over the VXLAN): a dump at start, then the kernel's neighbour events. Frames
// the inspector sends on ovl0 need a replica's MAC; the kernel's table keeps it fresh, and the
// kernel's own traffic (health checks) shares it.
#pragma once

#include "xdpfwd/netlink.hpp"
#include "xdpfwd/unique_fd.hpp"

#include <boost/asio/ip/address.hpp>

#include <chrono>
#include <optional>
#include <unordered_map>

struct nlmsghdr;

namespace xdpfwd::ingress {

class NeighbourCache {
public:
  // Follows the neighbours of one interface of the calling thread's network namespace.
  explicit NeighbourCache(int ifindex);

  // Readable when the kernel has news; process_events() takes them without blocking.
  int fd() const { return socket_.get(); }
  void process_events();

  std::optional<MacAddress> lookup(const boost::asio::ip::address& address) const;
  // Asks the kernel to resolve address (at most once a second per address).
  void resolve(const boost::asio::ip::address& address);

private:
  struct AddressHash {
    size_t operator()(const boost::asio::ip::address& address) const;
  };
  void send_request(void* message, size_t length);
  void receive(bool wait_for_dump);
  void update(const nlmsghdr* message);

  int ifindex_;
  UniqueFd socket_;
  unsigned sequence_ = 0;
  std::unordered_map<boost::asio::ip::address, MacAddress, AddressHash> macs_;
  std::unordered_map<boost::asio::ip::address, std::chrono::steady_clock::time_point, AddressHash> last_request_;
};

} // namespace xdpfwd::ingress
