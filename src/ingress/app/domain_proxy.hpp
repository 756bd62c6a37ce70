// The terminating path of an ingress with several services: TCP to its tls_ports and http_ports
// is handed by the ingress's XDP program to the ingress netns's kernel (DataPath registers the
// ports with IngressXdp::add_stack_tcp_port); this proxy accepts those connections on the
// service IPs, reads the first bytes (bounded in size and time), finds the name (TLS SNI, HTTP
// Host), picks the service (DomainTable: exact, longest wildcard, unknown_domain) and a replica
// of it (the service's lb rule), connects to the replica over the overlay from the ingress's
// kernel (source ports from ip_local_port_range, above the inspector's NAT range, so the overlay
// XDP program passes the replies to the kernel), optionally writes a PROXY protocol v2 header,
// replays the bytes read and relays both ways with splice(2) through a pipe per direction: the
// payload never enters user space.
//
//   accept ─► first bytes ─► name ─► service ─► replica ─► connect ─► [PROXY v2] + replay ─► relay
//                 │ timeout / too long / malformed          │ fails
//                 └──────────── alert / 400 / 421, close ◄───┘ (close, counted)
//
// Threads: everything runs on the io_context given (the inspector's main thread, which also
// serves the control socket), so configure() and status() need no locks. Replica choice uses
// balancers of the proxy's own (balance::Balancer per service, synced from the config on every
// configure), never the data path's: their state (round-robin cursor, least_conn counts) covers
// the proxy's connections only.
//
// Limits (domain_routing): max_connections at once (one more is reset at accept), max_first_bytes,
// first_bytes_timeout_ms, connect_timeout_ms, idle_timeout_ms. A connection holds at most
// max_first_bytes plus one read chunk in user space, and six descriptors (two sockets, two pipes).
// Half-close travels (a FIN from one side becomes shutdown(SHUT_WR) towards the other, which may
// go on sending), a reset from one side becomes a reset towards the other, and every way a
// connection ends without being relayed is counted by reason.
#pragma once

#include "xdpfwd/config.hpp"

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <nlohmann/json.hpp>

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

namespace xdpfwd::ingress {

// The TCP ports an ingress terminates: none with one service; else tls_ports and http_ports that
// its inspect policy allows (a port the policy forbids stays on the packet path, which drops it
// as port_not_allowed).
std::vector<std::uint16_t> terminated_ports(const config::Ingress& ingress);

// The PROXY protocol v2 header (haproxy's proxy-protocol.txt 2.2) announcing a TCP connection
// from client to server (the service IP and port the client connected to): signature, version 2
// command PROXY, TCP over IPv4 (both IPv4, after unmapping v4-mapped addresses) or over IPv6, the
// addresses and ports; no TLVs.
std::vector<std::uint8_t> proxy_v2_header(const boost::asio::ip::tcp::endpoint& client,
                                          const boost::asio::ip::tcp::endpoint& server);

class DomainProxy {
public:
  explicit DomainProxy(boost::asio::io_context& io);
  ~DomainProxy();
  DomainProxy(const DomainProxy&) = delete;
  DomainProxy& operator=(const DomainProxy&) = delete;

  // Listens on what the ingress terminates (service IPs x terminated_ports) and takes the new
  // services, domains and limits for new connections; connections already relayed go on. A port
  // that cannot be listened on is logged and left out. On the io_context's thread.
  void configure(const config::Ingress& ingress);
  // The health checks' verdict on a replica: unhealthy ones get no new connections.
  void set_replica_health(const std::string& service, const config::IpAddress& replica, bool healthy);
  // Closes the listeners and every connection. On the io_context's thread.
  void stop();
  nlohmann::json status() const;

  struct Shared;

private:
  struct Listener;
  void listen(const boost::asio::ip::address& address, std::uint16_t port, bool tls);
  void accept(const std::shared_ptr<Listener>& listener);

  boost::asio::io_context& io_;
  std::shared_ptr<Shared> shared_;
  std::vector<std::shared_ptr<Listener>> listeners_;
};

} // namespace xdpfwd::ingress
