// The typed model of /etc/xdpfwd/services.json and its validation. parse() returns either a
// Config that passed every check, or the list of everything wrong with the file.
#pragma once

#include <boost/asio/ip/address.hpp>
#include <boost/asio/ip/network_v4.hpp>
#include <boost/asio/ip/network_v6.hpp>

#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

namespace xdpfwd::config {

using IpAddress = boost::asio::ip::address;
using Ipv4Interface = boost::asio::ip::network_v4; // address plus prefix, "10.201.0.1/24"
using Ipv6Interface = boost::asio::ip::network_v6;
using Cidr = std::variant<boost::asio::ip::network_v4, boost::asio::ip::network_v6>;

enum class XdpMode { Auto, Native, Generic };
enum class Runtime { Static, Docker };
enum class LbRule { Maglev, RoundRobin, Weighted, LeastConn };
enum class ClientIp { Nat, Preserve };
enum class FragmentPolicy { Drop, Allow };
enum class Protocol { Tcp, Udp, Icmp };
enum class HealthCheckType { Tcp, Http, Udp, Dns };

struct Interface {
  std::string name;
  XdpMode xdp_mode = XdpMode::Auto;
};

struct Overlay {
  std::uint32_t vni = 0; // 1 .. 2^24-1, unique across ingresses
  std::optional<Ipv4Interface> address;
  std::optional<Ipv6Interface> address6;
  std::vector<IpAddress> remote_vteps;
};

struct AllowRule {
  Protocol protocol = Protocol::Tcp;
  std::vector<std::uint16_t> ports; // sorted, no repeats, "low-high" ranges expanded; empty: every
                                    // port (always empty for icmp, which also covers ICMPv6)
};

struct RateLimit {
  std::uint64_t packets_per_second_per_source = 0;
  std::uint64_t burst = 0; // defaults to packets_per_second_per_source
};

struct Inspect {
  std::vector<AllowRule> allow; // empty: every protocol and port
  std::vector<Cidr> deny_sources;
  FragmentPolicy fragments = FragmentPolicy::Drop;
  std::optional<RateLimit> rate_limit;
};

// Used when an ingress has more than one service; then at least one port list is non-empty.
// A port is in one list at most.
struct DomainRouting {
  std::vector<std::uint16_t> tls_ports;
  std::vector<std::uint16_t> http_ports;
  std::vector<std::uint16_t> dns_ports;
  std::string unknown_domain = "reject"; // "reject" or the name of a service of the ingress
  bool proxy_protocol = false;
  // Limits of the terminating proxy (tls_ports, http_ports).
  std::uint32_t max_connections = 4096;          // open client connections at once; more are reset
  std::uint32_t max_first_bytes = 16384;         // bytes read to find the name (ClientHello, request head)
  std::uint32_t first_bytes_timeout_ms = 5000;   // from accept until the name is known
  std::uint32_t connect_timeout_ms = 3000;       // to connect to the chosen replica
  std::uint32_t idle_timeout_ms = 300000;        // a relayed connection silent both ways this long is closed
};

struct HealthCheck {
  HealthCheckType type = HealthCheckType::Tcp;
  std::uint16_t port = 0;
  std::uint32_t interval_ms = 1000;
  std::uint32_t timeout_ms = 500;
  std::uint32_t fall = 3;
  std::uint32_t rise = 2;
  std::string http_path = "/";        // type http
  std::uint32_t http_expect_status = 200; // type http
};

struct Replica {
  IpAddress address;
  std::uint32_t weight = 1; // 0: drained, no new flows
};

struct Service {
  std::string name; // 1-63 of [A-Za-z0-9_.-], unique across the whole config (metrics label it)
  std::vector<std::string> domains; // lower case; "*.example.test" wildcards allowed
  LbRule lb = LbRule::Maglev;
  ClientIp client_ip = ClientIp::Nat;
  std::vector<Replica> replicas;            // runtime static
  std::optional<std::string> docker_service; // runtime docker
  std::optional<HealthCheck> health_check;
};

struct Ingress {
  std::string name; // 1-12 of [a-z0-9-]; names the netns xdpfwd-<name> and the veth xf-<name>
  std::vector<IpAddress> service_ips;
  Overlay overlay;
  Inspect inspect;
  DomainRouting domain_routing;
  std::vector<Service> services;
  // Flows the inspector keeps at once, its services together (an equal share each, at least
  // kMinFlowsPerService): the flow tables are allocated up front, about 160 bytes a flow.
  std::uint32_t max_flows = 262144;
};

inline constexpr std::uint32_t kMinFlowsPerService = 4096;
inline constexpr std::uint32_t kMaxFlowsPerIngress = 16777216;

struct Docker {
  std::string socket = "/var/run/docker.sock";
  std::string ingress_image = "xdpfwd-ingress:latest";
};

struct Config {
  std::vector<Interface> interfaces;
  Runtime runtime = Runtime::Static;
  std::optional<IpAddress> underlay_local;
  std::string control_socket = "/run/xdpfwd/control.sock";
  std::string metrics_listen = "127.0.0.1:9469";
  std::string log_level = "info"; // trace, debug, info, warn, error, critical, off
  std::string pin_dir = "/sys/fs/bpf/xdpfwd"; // where the BPF maps are pinned
  Docker docker;
  // A static service's "replicas" may be []: its traffic is dropped (no_replica) until it has
  // one. The daemon sets it on what it hands a runtime-docker inspector, whose services' tasks
  // can all be gone (scaled to 0, their node lost).
  bool allow_empty_replicas = false;
  std::vector<Ingress> ingresses;
};

// One thing wrong with a config file. path is a JSON path ("ingresses[1].service_ips[0]"),
// empty for the document itself; message says what is wrong ("\"198.18.0.300\" is not an IP
// address").
struct Error {
  std::string path;
  std::string message;

  friend bool operator==(const Error&, const Error&) = default;
};

// "ingresses[1].service_ips[0]: \"198.18.0.300\" is not an IP address"
std::string to_string(const Error& error);

// The names the config file uses for each value ("auto", "round_robin", ...).
std::string_view to_string(XdpMode value);
std::string_view to_string(Runtime value);
std::string_view to_string(LbRule value);
std::string_view to_string(ClientIp value);
std::string_view to_string(FragmentPolicy value);
std::string_view to_string(Protocol value);
std::string_view to_string(HealthCheckType value);

struct ParseResult {
  std::optional<Config> config; // set only when errors is empty
  std::vector<Error> errors;
};

// Parses and validates a document. Reports every error it can find, not just the first.
ParseResult parse(std::string_view json_text);
// Same, from a file; a file that cannot be read is one error naming the file and the reason.
ParseResult load_file(const std::filesystem::path& file);

} // namespace xdpfwd::config
