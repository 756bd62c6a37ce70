// rtnetlink through libmnl: the link, address, route and neighbour operations the daemon needs.
// Every failure throws std::system_error naming the operation ("create veth xf-waf: File exists").
#pragma once

#include <boost/asio/ip/address.hpp>

#include <array>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>

struct mnl_socket;
struct nlmsghdr;

namespace xdpfwd {

using MacAddress = std::array<std::uint8_t, 6>;
std::string to_string(const MacAddress& mac);

struct LinkInfo {
  int ifindex = 0;
  std::string name;
  MacAddress mac{};
  unsigned flags = 0; // IFF_*
  unsigned mtu = 0;
};

// A VXLAN device: its UDP socket lives in the namespace of the Netlink that creates it (the
// underlay), the device itself wherever the caller puts it (an ingress netns).
struct VxlanSpec {
  std::string name;
  std::uint32_t vni = 0;
  std::optional<boost::asio::ip::address> local; // underlay source address
  int underlay_ifindex = 0;                      // 0: none; else the MTU follows it
  std::uint16_t port = 4789;                     // IANA VXLAN port
};

// Routes the daemon installs carry this protocol number, so they can be told apart from others.
inline constexpr std::uint8_t kRouteProtocol = 211;

// One NETLINK_ROUTE socket, bound to the network namespace it was opened in.
class Netlink {
public:
  // Opens a socket in the calling thread's network namespace.
  static Netlink open();
  // Opens a socket in another network namespace; it keeps working from any thread.
  static Netlink open_in(int netns_fd);

  Netlink(Netlink&&) noexcept;
  Netlink& operator=(Netlink&&) noexcept;
  ~Netlink();

  std::optional<LinkInfo> find_link(const std::string& name);
  LinkInfo link(const std::string& name); // throws ENODEV if absent
  LinkInfo link(int ifindex);
  // The link that holds `address`, if any.
  std::optional<LinkInfo> find_link_with_address(const boost::asio::ip::address& address);

  // A veth pair: `name` here, `peer_name` created directly inside peer_netns_fd.
  void create_veth(const std::string& name, const std::string& peer_name, int peer_netns_fd);
  // Creates spec in this namespace and moves the device into target_netns_fd at once.
  void create_vxlan(const VxlanSpec& spec, int target_netns_fd);
  // Sends the VXLAN device's broadcast, unknown-unicast and multicast frames to vtep as well
  // (an all-zeros FDB entry, like `bridge fdb append 00:00:00:00:00:00 dst VTEP`).
  void add_vxlan_remote(const LinkInfo& vxlan, const boost::asio::ip::address& vtep);
  // A bridge in this namespace (no STP: it joins two ports of one host's segment).
  void create_bridge(const std::string& name);
  // Makes link a port of bridge.
  void set_master(const LinkInfo& link, const LinkInfo& bridge);
  // Deletes a link (a veth takes its peer along); false if there was none.
  bool delete_link(const std::string& name);
  void set_up(const LinkInfo& link);
  void set_mtu(const LinkInfo& link, unsigned mtu);

  // An address on a link; nodad skips IPv6 duplicate address detection (usable at once).
  void add_address(const LinkInfo& link, const boost::asio::ip::address& address, int prefix_len,
                   bool nodad = true);
  // A route to destination/prefix_len out of link; with a gateway it is `via gateway onlink`.
  void add_route(const LinkInfo& link, const boost::asio::ip::address& destination, int prefix_len,
                 const std::optional<boost::asio::ip::address>& gateway = std::nullopt);
  // A permanent neighbour entry: no ARP/ND is needed to reach `address` on link.
  void add_permanent_neighbor(const LinkInfo& link, const boost::asio::ip::address& address,
                              const MacAddress& mac);

private:
  explicit Netlink(mnl_socket* socket);
  // Sends one request and waits for its answer; on_message sees every reply message.
  void transact(nlmsghdr* request, const std::string& context,
                int (*on_message)(const nlmsghdr*, void*) = nullptr, void* data = nullptr);

  struct SocketCloser {
    void operator()(mnl_socket* socket) const;
  };
  std::unique_ptr<mnl_socket, SocketCloser> socket_;
  std::uint32_t port_id_ = 0;
  std::uint32_t sequence_ = 0;
};

} // namespace xdpfwd
