// Reading /etc/xdpfwd/services.json: JSON text → typed model, checking everything on the way.
//
// One pass over the document. Each read_* function gets a Node (a JSON value and its path), fills
// its part of the model and adds what is wrong to the shared error list, then goes on: one run
// reports every problem. Checks that span several objects (unique names, service IPs, VNIs,
// overlapping overlays) go through registries that remember where a value was first seen, so an
// error names both places. Keys are read in a fixed order, not the document's, so that what a
// check depends on (runtime, underlay, the ingress's overlay) is known before it runs.
#include "xdpfwd/config.hpp"

#include "ingress_abi.h"
#include "xdpfwd_abi.h"

#include <nlohmann/json.hpp>

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cctype>
#include <cerrno>
#include <charconv>
#include <cstring>
#include <initializer_list>
#include <limits>
#include <map>
#include <set>

namespace xdpfwd::config {
namespace {

using nlohmann::json;
using Errors = std::vector<Error>;
namespace ip = boost::asio::ip;

// ------------------------------------------------------------------------------------------------
// Names of enum values, shared by the reader and to_string().

template <class E>
struct Named {
  std::string_view name;
  E value;
};

constexpr std::array<Named<XdpMode>, 3> kXdpModes{
    {{"auto", XdpMode::Auto}, {"native", XdpMode::Native}, {"generic", XdpMode::Generic}}};
constexpr std::array<Named<Runtime>, 2> kRuntimes{{{"static", Runtime::Static}, {"docker", Runtime::Docker}}};
constexpr std::array<Named<LbRule>, 4> kLbRules{{{"maglev", LbRule::Maglev},
                                                  {"round_robin", LbRule::RoundRobin},
                                                  {"weighted", LbRule::Weighted},
                                                  {"least_conn", LbRule::LeastConn}}};
constexpr std::array<Named<ClientIp>, 2> kClientIps{{{"nat", ClientIp::Nat}, {"preserve", ClientIp::Preserve}}};
constexpr std::array<Named<FragmentPolicy>, 2> kFragmentPolicies{
    {{"drop", FragmentPolicy::Drop}, {"allow", FragmentPolicy::Allow}}};
constexpr std::array<Named<Protocol>, 3> kProtocols{
    {{"tcp", Protocol::Tcp}, {"udp", Protocol::Udp}, {"icmp", Protocol::Icmp}}};
constexpr std::array<Named<HealthCheckType>, 4> kHealthCheckTypes{{{"tcp", HealthCheckType::Tcp},
                                                                    {"http", HealthCheckType::Http},
                                                                    {"udp", HealthCheckType::Udp},
                                                                    {"dns", HealthCheckType::Dns}}};
constexpr std::array<std::string_view, 7> kLogLevels{"trace", "debug", "info", "warn", "error", "critical", "off"};

constexpr const auto& names_of(XdpMode) { return kXdpModes; }
constexpr const auto& names_of(Runtime) { return kRuntimes; }
constexpr const auto& names_of(LbRule) { return kLbRules; }
constexpr const auto& names_of(ClientIp) { return kClientIps; }
constexpr const auto& names_of(FragmentPolicy) { return kFragmentPolicies; }
constexpr const auto& names_of(Protocol) { return kProtocols; }
constexpr const auto& names_of(HealthCheckType) { return kHealthCheckTypes; }

template <class E>
std::string_view name_of(E value) {
  for (const auto& named : names_of(value))
    if (named.value == value) return named.name;
  return "?";
}

// ------------------------------------------------------------------------------------------------
// Small text helpers.

// A string as it appears in JSON: "a \"b\"".
std::string quote(std::string_view text) {
  return json(std::string(text)).dump(-1, ' ', false, json::error_handler_t::replace);
}

// How a wrong value is shown in "expected X, got Y": scalars as written, containers by kind.
std::string describe(const json& value) {
  switch (value.type()) {
  case json::value_t::object: return "an object";
  case json::value_t::array: return "an array";
  case json::value_t::discarded: return "nothing";
  default: {
    std::string text = value.dump(-1, ' ', false, json::error_handler_t::replace);
    if (text.size() > 40) text = text.substr(0, 37) + "...";
    return text;
  }
  }
}

template <class Range>
std::string join(const Range& items, std::string_view separator = ", ") {
  std::string out;
  for (const auto& item : items) {
    if (!out.empty()) out += separator;
    out += item;
  }
  return out;
}

template <class E, std::size_t N>
std::string join_names(const std::array<Named<E>, N>& table) {
  std::vector<std::string> names;
  for (const auto& named : table) names.emplace_back(named.name);
  return join(names);
}

std::size_t edit_distance(std::string_view a, std::string_view b) {
  std::vector<std::size_t> row(b.size() + 1);
  for (std::size_t j = 0; j <= b.size(); ++j) row[j] = j;
  for (std::size_t i = 1; i <= a.size(); ++i) {
    std::size_t diagonal = row[0];
    row[0] = i;
    for (std::size_t j = 1; j <= b.size(); ++j) {
      const std::size_t above = row[j];
      row[j] = std::min({row[j] + 1, row[j - 1] + 1, diagonal + (a[i - 1] == b[j - 1] ? 0 : 1)});
      diagonal = above;
    }
  }
  return row[b.size()];
}

// The known word closest to a misspelt or shortened one, if it is close enough to be what was meant.
std::optional<std::string_view> closest(std::string_view word, std::initializer_list<std::string_view> known) {
  std::optional<std::string_view> best;
  std::size_t best_distance = std::max<std::size_t>(1, std::min<std::size_t>(3, word.size() / 3));
  for (const std::string_view candidate : known) {
    const std::size_t distance = edit_distance(word, candidate);
    if (distance <= best_distance && (!best || distance < best_distance)) {
      best = candidate;
      best_distance = distance;
    }
  }
  if (!best && word.size() >= 4) // "interval" for "interval_ms"
    for (const std::string_view candidate : known)
      if (candidate.starts_with(word)) return candidate;
  return best;
}

bool is_lower_alnum(char c) { return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9'); }
bool is_alnum(char c) { return is_lower_alnum(c) || (c >= 'A' && c <= 'Z'); }

std::optional<unsigned> parse_decimal(std::string_view text, unsigned max) {
  if (text.empty() || text.size() > 10 || !std::all_of(text.begin(), text.end(), ::isdigit)) return std::nullopt;
  unsigned value = 0;
  const auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (error != std::errc() || end != text.data() + text.size() || value > max) return std::nullopt;
  return value;
}

// ------------------------------------------------------------------------------------------------
// Addresses.

// A plain IP address; no zone index ("fe80::1%eth0"): none of the places that take one needs it.
std::optional<IpAddress> parse_ip(std::string_view text) {
  boost::system::error_code error;
  const IpAddress address = ip::make_address(std::string(text), error);
  if (error || (address.is_v6() && address.to_v6().scope_id() != 0)) return std::nullopt;
  return address;
}

// Why an address cannot be the address of a host on a network, if it cannot.
std::optional<std::string> not_unicast(const IpAddress& address) {
  const std::string text = quote(address.to_string());
  if (address.is_unspecified()) return text + " is the unspecified address";
  if (address.is_loopback()) return text + " is a loopback address";
  if (address.is_multicast()) return text + " is a multicast address";
  if (address.is_v4() && address.to_v4() == ip::address_v4::broadcast()) return text + " is the broadcast address";
  return std::nullopt;
}

template <class Network>
std::string to_text(const Network& network) {
  return network.canonical().to_string();
}

bool contains(const ip::network_v4& network, const ip::address_v4& address) {
  return ip::network_v4(address, network.prefix_length()).network() == network.network();
}
bool contains(const ip::network_v6& network, const ip::address_v6& address) {
  return ip::network_v6(address, network.prefix_length()).network() == network.network();
}

template <class Network>
bool overlaps(const Network& a, const Network& b) {
  const auto length = std::min(a.prefix_length(), b.prefix_length());
  return Network(a.address(), length).network() == Network(b.address(), length).network();
}

struct Prefixed {
  IpAddress address;
  std::optional<unsigned> length; // absent: written without "/len"
};

std::optional<Prefixed> parse_prefixed(std::string_view text) {
  const auto slash = text.find('/');
  const auto address = parse_ip(text.substr(0, slash));
  if (!address) return std::nullopt;
  if (slash == std::string_view::npos) return Prefixed{*address, std::nullopt};
  const auto length = parse_decimal(text.substr(slash + 1), address->is_v4() ? 32 : 128);
  if (!length) return std::nullopt;
  return Prefixed{*address, *length};
}

// ------------------------------------------------------------------------------------------------
// Names.

// Linux's dev_valid_name(): 1-15 bytes, not "." or "..", no '/', ':' or white space.
bool valid_ifname(std::string_view name) {
  if (name.empty() || name.size() > 15 || name == "." || name == "..") return false;
  return std::none_of(name.begin(), name.end(), [](char c) {
    return c == '/' || c == ':' || std::isspace(static_cast<unsigned char>(c)) || std::iscntrl(static_cast<unsigned char>(c));
  });
}

// 1-12 of [a-z0-9-], no '-' at either end: "xf-" + name must fit IFNAMSIZ (15 usable bytes).
bool valid_ingress_name(std::string_view name) {
  return !name.empty() && name.size() <= 12 && name.front() != '-' && name.back() != '-' &&
         std::all_of(name.begin(), name.end(), [](char c) { return is_lower_alnum(c) || c == '-'; });
}

// 1-63 of [A-Za-z0-9_.-], starting with a letter or digit (Docker's rule for service names).
bool valid_service_name(std::string_view name) {
  return !name.empty() && name.size() <= 63 && is_alnum(name.front()) &&
         std::all_of(name.begin(), name.end(), [](char c) { return is_alnum(c) || c == '_' || c == '.' || c == '-'; });
}

// Why a (lower-cased) host name is not valid, if it is not. Labels of 1-63 [a-z0-9-] without '-'
// at either end, 253 bytes at most; with allow_wildcard, "*." may stand for the first label.
std::optional<std::string> domain_problem(std::string_view name, bool allow_wildcard) {
  const std::string text = quote(name);
  if (std::any_of(name.begin(), name.end(), [](char c) { return static_cast<unsigned char>(c) >= 0x80; }))
    return text + " is not ASCII; write internationalised names in their xn-- form";
  if (!name.empty() && name.back() == '.') return text + ": write the name without the trailing dot";
  if (name == "*") return "\"*\" alone is not a domain; domain_routing.unknown_domain takes every other name";
  std::string_view rest = name;
  if (allow_wildcard && rest.starts_with("*.")) rest.remove_prefix(2);
  if (rest.empty() || name.size() > 253) return text + " is not a valid domain name";
  while (true) {
    const auto dot = rest.find('.');
    const std::string_view label = rest.substr(0, dot);
    if (label.empty() || label.size() > 63 || label.front() == '-' || label.back() == '-' ||
        !std::all_of(label.begin(), label.end(), [](char c) { return is_lower_alnum(c) || c == '-'; })) {
      if (label == "*" && allow_wildcard) return text + ": a wildcard \"*.\" may only start the name";
      return text + " is not a valid domain name";
    }
    if (dot == std::string_view::npos) return std::nullopt;
    rest.remove_prefix(dot + 1);
  }
}

// Why a filesystem path is not absolute and normalised, if it is not.
std::optional<std::string> path_problem(std::string_view text) {
  const std::filesystem::path path(text);
  if (!path.is_absolute()) return quote(text) + " is not an absolute path";
  std::string normal = path.lexically_normal().string();
  if (normal.size() > 1 && normal.back() == '/') normal.pop_back();
  if (normal != text) return quote(text) + " is not normalised (did you mean " + quote(normal) + "?)";
  return std::nullopt;
}

// "host:port" or "[v6]:port"; host an IPv4 address or a host name.
std::optional<std::string> listen_problem(std::string_view text) {
  const std::string bad = quote(text) + " is not \"host:port\" or \"[ipv6]:port\"";
  std::string_view host;
  std::string_view port;
  if (text.starts_with('[')) {
    const auto close = text.find("]:");
    if (close == std::string_view::npos) return bad;
    host = text.substr(1, close - 1);
    port = text.substr(close + 2);
    const auto address = parse_ip(host);
    if (!address || !address->is_v6()) return quote(host) + " is not an IPv6 address";
  } else {
    const auto colon = text.rfind(':');
    if (colon == std::string_view::npos || colon == 0) return bad;
    host = text.substr(0, colon);
    port = text.substr(colon + 1);
    if (host.find(':') != std::string_view::npos) return quote(text) + ": write an IPv6 address in brackets, \"[::1]:9469\"";
    const auto address = parse_ip(host);
    if (!address && domain_problem(host, false)) return quote(host) + " is not an IPv4 address or a host name";
  }
  const auto number = parse_decimal(port, 65535);
  if (!number || *number == 0) return quote(port) + " is not a port number (1-65535)";
  return std::nullopt;
}

// ------------------------------------------------------------------------------------------------
// The reader: a JSON value with its path, and where its errors go.

std::string child_path(const std::string& path, std::string_view key) {
  return path.empty() ? std::string(key) : path + "." + std::string(key);
}
std::string child_path(const std::string& path, std::size_t index) { return path + "[" + std::to_string(index) + "]"; }

class Node {
public:
  Node(const json& value, std::string path, Errors& errors) : value_(&value), path_(std::move(path)), errors_(&errors) {}

  const json& value() const { return *value_; }
  const std::string& path() const { return path_; }
  Errors& errors() const { return *errors_; }

  void error(std::string message) const { errors_->push_back({path_, std::move(message)}); }
  void error_at(std::string_view key, std::string message) const {
    errors_->push_back({child_path(path_, key), std::move(message)});
  }

  // Reports "expected <what>, got <value>" and returns false when the value is of another type.
  bool expect(bool matches, std::string_view what) const {
    if (!matches) error("expected " + std::string(what) + ", got " + describe(*value_));
    return matches;
  }
  bool expect_object() const { return expect(value_->is_object(), "an object"); }
  bool expect_array() const { return expect(value_->is_array(), "an array"); }

  // Calls f(Node) for each element of an array; false (and reported) when it is not an array.
  template <class F>
  bool each(F&& f) const {
    if (!expect_array()) return false;
    for (std::size_t i = 0; i < value_->size(); ++i) f(Node((*value_)[i], child_path(path_, i), *errors_));
    return true;
  }

private:
  const json* value_;
  std::string path_;
  Errors* errors_;
};

// Each decode() reads one JSON value into a model type: true and out set, or false and reported.

bool decode(const Node& node, std::string& out) {
  if (!node.expect(node.value().is_string(), "a string")) return false;
  out = node.value().get<std::string>();
  return true;
}

bool decode(const Node& node, bool& out) {
  if (!node.expect(node.value().is_boolean(), "true or false")) return false;
  out = node.value().get<bool>();
  return true;
}

bool decode(const Node& node, IpAddress& out) {
  std::string text;
  if (!decode(node, text)) return false;
  const auto address = parse_ip(text);
  if (!address) {
    node.error(quote(text) + " is not an IP address");
    return false;
  }
  out = *address;
  return true;
}

template <class E>
  requires std::is_enum_v<E>
bool decode(const Node& node, E& out) {
  std::string text;
  if (!decode(node, text)) return false;
  for (const auto& named : names_of(E{}))
    if (named.name == text) {
      out = named.value;
      return true;
    }
  node.error(quote(text) + " is not one of " + join_names(names_of(E{})));
  return false;
}

template <class Int>
bool decode_integer(const Node& node, Int& out, std::uint64_t min, std::uint64_t max) {
  const json& value = node.value();
  if (!node.expect(value.is_number_integer(), "an integer")) return false;
  const bool negative = value.is_number_integer() && !value.is_number_unsigned() && value.get<std::int64_t>() < 0;
  const std::uint64_t number = negative ? 0 : value.get<std::uint64_t>();
  if (negative || number < min || number > max) {
    const std::string range = max == std::numeric_limits<std::uint64_t>::max() ? "at least " + std::to_string(min)
                                                                      : std::to_string(min) + "-" + std::to_string(max);
    node.error(value.dump() + " is out of range (" + range + ")");
    return false;
  }
  out = static_cast<Int>(number);
  return true;
}

// A list of ports: numbers 1-65535 and "low-high" ranges, kept sorted and without repeats.
bool decode_ports(const Node& node, std::vector<std::uint16_t>& out) {
  std::set<std::uint16_t> ports;
  bool ok = true;
  const bool is_array = node.each([&](const Node& element) {
    if (element.value().is_string()) {
      const std::string text = element.value().get<std::string>();
      const auto dash = text.find('-');
      const auto low = parse_decimal(std::string_view(text).substr(0, dash), 65535);
      const auto high = dash == std::string::npos ? std::nullopt : parse_decimal(std::string_view(text).substr(dash + 1), 65535);
      if (!low || !high || *low == 0 || *low > *high) {
        element.error(quote(text) + " is not a port range (\"low-high\", 1 <= low <= high <= 65535)");
        ok = false;
        return;
      }
      for (unsigned port = *low; port <= *high; ++port) ports.insert(static_cast<std::uint16_t>(port));
      return;
    }
    if (!element.value().is_number_integer()) {
      element.error("expected a port number or a \"low-high\" range, got " + describe(element.value()));
      ok = false;
      return;
    }
    std::uint16_t port = 0;
    if (decode_integer(element, port, 1, 65535)) ports.insert(port);
    else ok = false;
  });
  if (!is_array || !ok) return false;
  if (ports.empty()) {
    node.error("must not be empty");
    return false;
  }
  out.assign(ports.begin(), ports.end());
  return true;
}

enum class Need { Optional, Required };

// A JSON object being read: reports unknown keys on construction, then hands out its members.
class Object {
public:
  Object(const Node& node, std::initializer_list<std::string_view> keys) : node_(node) {
    valid_ = node.expect_object();
    if (!valid_) return;
    for (const auto& [key, value] : node.value().items()) {
      if (std::find(keys.begin(), keys.end(), key) != keys.end()) continue;
      std::string message = "unknown key";
      if (const auto suggestion = closest(key, keys)) message += " (did you mean " + quote(*suggestion) + "?)";
      node.error_at(key, std::move(message));
    }
  }

  bool valid() const { return valid_; }
  const Node& node() const { return node_; }
  std::string path_of(std::string_view key) const { return child_path(node_.path(), key); }
  bool has(std::string_view key) const { return valid_ && node_.value().contains(key); }

  // The member, if present; a required one that is missing is reported.
  std::optional<Node> get(std::string_view key, Need need = Need::Optional) const {
    if (!valid_) return std::nullopt;
    const auto found = node_.value().find(key);
    if (found == node_.value().end()) {
      if (need == Need::Required) node_.error_at(key, "required key is missing");
      return std::nullopt;
    }
    return Node(*found, path_of(key), node_.errors());
  }

  // Reads a member into out (left alone when absent). False when something was reported.
  template <class T>
  bool read(std::string_view key, T& out, Need need = Need::Optional) const {
    const auto member = get(key, need);
    if (!member) return need == Need::Optional && valid_;
    return decode(*member, out);
  }
  template <class T>
  bool read(std::string_view key, std::optional<T>& out, Need need = Need::Optional) const {
    const auto member = get(key, need);
    if (!member) return need == Need::Optional && valid_;
    T value{};
    if (!decode(*member, value)) return false;
    out = std::move(value);
    return true;
  }
  template <class Int>
  bool read_integer(std::string_view key, Int& out, std::uint64_t min, std::uint64_t max, Need need = Need::Optional) const {
    const auto member = get(key, need);
    if (!member) return need == Need::Optional && valid_;
    return decode_integer(*member, out, min, max);
  }

private:
  Node node_;
  bool valid_ = false;
};

template <class Key>
using Registry = std::map<Key, std::string>; // value → path where it was first seen

// Registers value at node's path; reports it and returns false when it was seen before.
template <class Key>
bool register_unique(Registry<Key>& registry, const Key& key, const Node& node, std::string_view shown) {
  const auto [found, inserted] = registry.emplace(key, node.path());
  if (!inserted) node.error(std::string(shown) + " is already used by " + found->second);
  return inserted;
}

// ------------------------------------------------------------------------------------------------
// The document.

constexpr std::uint32_t kMaxVni = (1u << 24) - 1;
constexpr std::size_t kMaxUnixPath = 107; // sun_path is 108 bytes with its terminating NUL

class ConfigReader {
public:
  explicit ConfigReader(Errors& errors) : errors_(errors) {}

  Config read(const Node& root) {
    Config config;
    const Object top(root, {"interfaces", "runtime", "underlay", "control_socket", "metrics", "log", "pin_dir",
                            "docker", "allow_empty_replicas", "ingresses"});
    if (!top.valid()) return config;

    if (const auto node = top.get("interfaces", Need::Required)) read_interfaces(*node, config.interfaces);
    if (top.read("runtime", config.runtime)) runtime_ = config.runtime;
    top.read("allow_empty_replicas", config.allow_empty_replicas); // before the services it applies to
    allow_empty_replicas_ = config.allow_empty_replicas;
    if (const auto node = top.get("underlay")) read_underlay(*node, config.underlay_local);
    if (const auto node = top.get("control_socket")) read_socket_path(*node, config.control_socket);
    if (const auto node = top.get("metrics")) {
      const Object metrics(*node, {"listen"});
      if (const auto listen = metrics.get("listen"); listen && decode(*listen, config.metrics_listen))
        if (const auto problem = listen_problem(config.metrics_listen)) listen->error(*problem);
    }
    if (const auto node = top.get("log")) {
      const Object log(*node, {"level"});
      if (const auto level = log.get("level"); level && decode(*level, config.log_level))
        if (std::find(kLogLevels.begin(), kLogLevels.end(), config.log_level) == kLogLevels.end())
          level->error(quote(config.log_level) + " is not one of " + join(kLogLevels));
    }
    if (const auto node = top.get("pin_dir"); node && decode(*node, config.pin_dir))
      if (const auto problem = path_problem(config.pin_dir)) node->error(*problem);
    if (const auto node = top.get("docker")) {
      const Object docker(*node, {"socket", "ingress_image"});
      if (const auto socket = docker.get("socket")) read_socket_path(*socket, config.docker.socket);
      if (const auto image = docker.get("ingress_image"); image && decode(*image, config.docker.ingress_image))
        if (config.docker.ingress_image.empty() ||
            std::any_of(config.docker.ingress_image.begin(), config.docker.ingress_image.end(),
                        [](char c) { return std::isspace(static_cast<unsigned char>(c)); }))
          image->error(quote(config.docker.ingress_image) + " is not an image reference");
    }
    if (const auto node = top.get("ingresses", Need::Required)) {
      node->each([&](const Node& element) { config.ingresses.push_back(read_ingress(element)); });
      if (node->value().is_array() && node->value().empty()) node->error("must not be empty");
      check_map_capacity(*node, config.ingresses);
    }
    check_service_ips_outside_overlays();
    return config;
  }

private:
  // Where one ingress's services are checked against each other and against its overlay.
  struct IngressScope {
    const Overlay& overlay;
    bool overlay_valid; // false: its errors are reported already, replicas are not held against it
    std::size_t service_count;
    Registry<std::string> domains;
    Registry<IpAddress> replicas;
  };

  void read_interfaces(const Node& node, std::vector<Interface>& interfaces) {
    Registry<std::string> names;
    node.each([&](const Node& element) {
      const Object object(element, {"name", "xdp_mode"});
      Interface interface;
      if (const auto name = object.get("name", Need::Required); name && decode(*name, interface.name)) {
        if (!valid_ifname(interface.name))
          name->error(quote(interface.name) + " is not a valid interface name (1-15 characters, no '/', ':' or spaces)");
        else
          register_unique(names, interface.name, *name, quote(interface.name));
      }
      object.read("xdp_mode", interface.xdp_mode);
      interfaces.push_back(std::move(interface));
    });
    if (node.value().is_array() && node.value().empty()) node.error("must not be empty");
  }

  // underlay_local_ is set only to a valid address; underlay_invalid_ when one was given but is
  // not, so that remote_vteps are not held against a missing or wrong underlay.local twice.
  void read_underlay(const Node& node, std::optional<IpAddress>& local) {
    const Object underlay(node, {"local"});
    underlay_invalid_ = !underlay.valid();
    const auto member = underlay.get("local");
    if (!member) return;
    IpAddress address;
    if (!decode(*member, address)) {
      underlay_invalid_ = true;
    } else if (const auto problem = not_unicast(address)) {
      member->error(*problem);
      underlay_invalid_ = true;
    } else {
      local = address;
      underlay_local_ = address;
    }
  }

  static void read_socket_path(const Node& node, std::string& out) {
    if (!decode(node, out)) return;
    if (const auto problem = path_problem(out)) node.error(*problem);
    else if (out.size() > kMaxUnixPath)
      node.error("is " + std::to_string(out.size()) + " bytes long; a unix socket path has at most " +
                 std::to_string(kMaxUnixPath));
  }

  Ingress read_ingress(const Node& node) {
    Ingress ingress;
    const Object object(node, {"name", "service_ips", "overlay", "inspect", "domain_routing", "services", "max_flows"});
    if (!object.valid()) return ingress;

    if (const auto name = object.get("name", Need::Required); name && decode(*name, ingress.name)) {
      if (!valid_ingress_name(ingress.name))
        name->error(quote(ingress.name) +
                    " is not a valid ingress name (1-12 characters of a-z, 0-9 and '-', not starting or ending with '-')");
      else
        register_unique(ingress_names_, ingress.name, *name, quote(ingress.name));
    }
    if (const auto ips = object.get("service_ips", Need::Required)) read_service_ips(*ips, ingress.service_ips);

    bool overlay_valid = false;
    if (const auto overlay = object.get("overlay", Need::Required)) overlay_valid = read_overlay(*overlay, ingress.overlay);
    if (const auto inspect = object.get("inspect")) read_inspect(*inspect, ingress.inspect);
    object.read_integer("max_flows", ingress.max_flows, kMinFlowsPerService, kMaxFlowsPerIngress);
    const auto routing = object.get("domain_routing");
    if (routing) read_domain_routing(*routing, ingress.domain_routing);

    if (const auto services = object.get("services", Need::Required)) {
      IngressScope scope{ingress.overlay, overlay_valid, services->value().is_array() ? services->value().size() : 0, {}, {}};
      services->each([&](const Node& element) { ingress.services.push_back(read_service(element, scope)); });
      if (services->value().is_array() && services->value().empty()) services->error("must not be empty");
    }
    // Names that could not be read would make unknown_domain look wrong: skip it then.
    const bool services_named = !ingress.services.empty() &&
                                std::none_of(ingress.services.begin(), ingress.services.end(),
                                             [](const Service& service) { return service.name.empty(); });
    check_domain_routing(object, routing, ingress, services_named);
    return ingress;
  }

  void read_service_ips(const Node& node, std::vector<IpAddress>& out) {
    node.each([&](const Node& element) {
      IpAddress address;
      if (!decode(element, address)) return;
      if (const auto problem = not_unicast(address)) element.error(*problem);
      else if (register_unique(service_ips_, address, element, quote(address.to_string()))) out.push_back(address);
    });
    if (node.value().is_array() && node.value().empty()) node.error("must not be empty");
    if (out.size() > XDPFWD_INGRESS_MAX_SERVICE_IPS)
      node.error("has " + std::to_string(out.size()) + " addresses; an ingress takes at most " +
                 std::to_string(XDPFWD_INGRESS_MAX_SERVICE_IPS) + " (the entries of its inspector's local_service_ips map)");
  }

  // The host program's maps have a fixed size: a config that would overflow them is refused
  // whole, before anything is applied.
  static void check_map_capacity(const Node& node, const std::vector<Ingress>& ingresses) {
    std::size_t service_ips = 0;
    for (const auto& ingress : ingresses) service_ips += ingress.service_ips.size();
    if (service_ips > XDPFWD_MAX_SERVICE_IPS)
      node.error("have " + std::to_string(service_ips) + " service IPs in all; the host XDP program's services map takes at most " +
                 std::to_string(XDPFWD_MAX_SERVICE_IPS));
    if (ingresses.size() > XDPFWD_MAX_INGRESS_DEVS)
      node.error("has " + std::to_string(ingresses.size()) + " ingresses; the host XDP program's ingress_devs map takes at most " +
                 std::to_string(XDPFWD_MAX_INGRESS_DEVS));
  }

  // True when the subnets are known: each address given is valid, and one at least is.
  bool read_overlay(const Node& node, Overlay& overlay) {
    const Object object(node, {"vni", "address", "address6", "remote_vteps"});
    if (!object.valid()) return false;
    if (const auto vni = object.get("vni", Need::Required); vni && decode_integer(*vni, overlay.vni, 1, kMaxVni))
      register_unique(vnis_, overlay.vni, *vni, "VNI " + std::to_string(overlay.vni));

    if (const auto address = object.get("address"))
      if (const auto network = read_interface_address(*address, false))
        if (register_overlay(subnets4_, network->v4, *address)) overlay.address = network->v4;
    if (const auto address = object.get("address6"))
      if (const auto network = read_interface_address(*address, true))
        if (register_overlay(subnets6_, network->v6, *address)) overlay.address6 = network->v6;
    if (!object.has("address") && !object.has("address6"))
      node.error("needs \"address\" (IPv4), \"address6\" (IPv6) or both");

    if (const auto vteps = object.get("remote_vteps")) read_remote_vteps(*vteps, overlay.remote_vteps);
    return object.has("address") == overlay.address.has_value() && object.has("address6") == overlay.address6.has_value() &&
           (overlay.address || overlay.address6);
  }

  struct InterfaceAddress {
    Ipv4Interface v4;
    Ipv6Interface v6;
  };

  // "10.201.0.1/24" (v6 false) or "fd00:201::1/64" (v6 true): the ingress's own address and
  // the overlay's subnet.
  static std::optional<InterfaceAddress> read_interface_address(const Node& node, bool v6) {
    std::string text;
    if (!decode(node, text)) return std::nullopt;
    const std::string example = v6 ? "\"fd00:201::1/64\"" : "\"10.201.0.1/24\"";
    const auto prefixed = parse_prefixed(text);
    if (!prefixed || !prefixed->length) {
      node.error(quote(text) + " is not an address with a prefix length, like " + example);
      return std::nullopt;
    }
    if (prefixed->address.is_v6() != v6) {
      node.error(quote(text) + (v6 ? " is not an IPv6 address (IPv4 goes in \"address\")"
                                   : " is not an IPv4 address (IPv6 goes in \"address6\")"));
      return std::nullopt;
    }
    if (const auto problem = not_unicast(prefixed->address)) {
      node.error(*problem);
      return std::nullopt;
    }
    const auto length = static_cast<unsigned short>(*prefixed->length);
    InterfaceAddress out;
    if (v6) {
      out.v6 = Ipv6Interface(prefixed->address.to_v6(), length);
      if (length < 127 && out.v6.network() == prefixed->address.to_v6()) {
        node.error(quote(text) + " is the subnet's own address; give the ingress a host address, like " + example);
        return std::nullopt;
      }
    } else {
      out.v4 = Ipv4Interface(prefixed->address.to_v4(), length);
      if (length < 31 && (out.v4.network() == prefixed->address.to_v4() || out.v4.broadcast() == prefixed->address.to_v4())) {
        node.error(quote(text) + " is the subnet's network or broadcast address; give the ingress a host address, like " + example);
        return std::nullopt;
      }
    }
    return out;
  }

  template <class Network>
  static bool register_overlay(std::vector<std::pair<Network, std::string>>& subnets, const Network& network, const Node& node) {
    for (const auto& [other, path] : subnets)
      if (overlaps(network, other)) {
        node.error("subnet " + to_text(network) + " overlaps " + to_text(other) + " of " + path);
        return false;
      }
    subnets.emplace_back(network, node.path());
    return true;
  }

  void read_remote_vteps(const Node& node, std::vector<IpAddress>& out) {
    if (runtime_ == Runtime::Docker) {
      node.error("only used with runtime \"static\" (Swarm finds the other nodes itself)");
      return;
    }
    Registry<IpAddress> seen;
    node.each([&](const Node& element) {
      IpAddress address;
      if (!decode(element, address)) return;
      if (const auto problem = not_unicast(address)) element.error(*problem);
      else if (underlay_local_ && address == *underlay_local_)
        element.error(quote(address.to_string()) + " is underlay.local, this node itself");
      else if (underlay_local_ && address.is_v4() != underlay_local_->is_v4())
        element.error(quote(address.to_string()) + " is of another address family than underlay.local " +
                      quote(underlay_local_->to_string()));
      else if (register_unique(seen, address, element, quote(address.to_string())))
        out.push_back(address);
    });
    if (node.value().is_array() && !node.value().empty() && !underlay_local_ && !underlay_invalid_)
      node.error("needs underlay.local, the address of this node's VXLAN endpoint");
  }

  static void read_inspect(const Node& node, Inspect& inspect) {
    const Object object(node, {"allow", "deny_sources", "fragments", "rate_limit"});
    if (const auto allow = object.get("allow"))
      allow->each([&](const Node& element) {
        AllowRule rule;
        if (read_allow_rule(element, rule)) inspect.allow.push_back(std::move(rule));
      });
    if (const auto deny = object.get("deny_sources"))
      deny->each([&](const Node& element) {
        if (auto cidr = read_cidr(element)) inspect.deny_sources.push_back(*cidr);
      });
    object.read("fragments", inspect.fragments);
    if (const auto rate_limit = object.get("rate_limit")) {
      const Object limit(*rate_limit, {"packets_per_second_per_source", "burst"});
      RateLimit value;
      const std::uint64_t max = std::numeric_limits<std::uint64_t>::max();
      bool ok = limit.read_integer("packets_per_second_per_source", value.packets_per_second_per_source, 1, max, Need::Required);
      value.burst = value.packets_per_second_per_source;
      ok = limit.read_integer("burst", value.burst, 1, max) && ok;
      if (ok) inspect.rate_limit = value;
    }
  }

  static bool read_allow_rule(const Node& node, AllowRule& rule) {
    const Object object(node, {"proto", "ports"});
    if (!object.valid()) return false;
    const bool proto_ok = object.read("proto", rule.protocol, Need::Required);
    const auto ports = object.get("ports");
    if (!ports) return proto_ok;
    if (proto_ok && rule.protocol == Protocol::Icmp) {
      ports->error("icmp has no ports");
      return false;
    }
    return decode_ports(*ports, rule.ports) && proto_ok;
  }

  // "198.19.66.0/24", "fd00:66::/48", or a single address.
  static std::optional<Cidr> read_cidr(const Node& node) {
    std::string text;
    if (!decode(node, text)) return std::nullopt;
    const auto prefixed = parse_prefixed(text);
    if (!prefixed) {
      node.error(quote(text) + " is not an address or a network (\"a.b.c.d/len\", \"x::y/len\")");
      return std::nullopt;
    }
    if (prefixed->address.is_v4()) {
      const ip::network_v4 network(prefixed->address.to_v4(), static_cast<unsigned short>(prefixed->length.value_or(32)));
      if (network.network() != network.address()) {
        node.error(quote(text) + " has host bits set (did you mean " + quote(to_text(network)) + "?)");
        return std::nullopt;
      }
      return network;
    }
    const ip::network_v6 network(prefixed->address.to_v6(), static_cast<unsigned short>(prefixed->length.value_or(128)));
    if (network.network() != network.address()) {
      node.error(quote(text) + " has host bits set (did you mean " + quote(to_text(network)) + "?)");
      return std::nullopt;
    }
    return network;
  }

  static void read_domain_routing(const Node& node, DomainRouting& routing) {
    const Object object(node, {"tls_ports", "http_ports", "dns_ports", "unknown_domain", "proxy_protocol", "max_connections",
                               "max_first_bytes", "first_bytes_timeout_ms", "connect_timeout_ms", "idle_timeout_ms"});
    if (!object.valid()) return;
    // A port belongs to one way of finding the domain.
    std::map<std::uint16_t, std::string_view> owner;
    for (const auto& [key, ports] : {std::pair<std::string_view, std::vector<std::uint16_t>*>{"tls_ports", &routing.tls_ports},
                                     {"http_ports", &routing.http_ports},
                                     {"dns_ports", &routing.dns_ports}}) {
      const auto member = object.get(key);
      if (!member || !decode_ports(*member, *ports)) continue;
      for (const std::uint16_t port : *ports) {
        const auto [found, inserted] = owner.emplace(port, key);
        if (!inserted) member->error("port " + std::to_string(port) + " is also in " + std::string(found->second));
      }
    }
    if (const auto unknown = object.get("unknown_domain"); unknown && decode(*unknown, routing.unknown_domain))
      if (routing.unknown_domain.empty()) unknown->error("must be \"reject\" or the name of a service of this ingress");
    object.read("proxy_protocol", routing.proxy_protocol);
    constexpr std::uint32_t kHour = 3'600'000;
    object.read_integer("max_connections", routing.max_connections, 1, 1'000'000);
    // A ClientHello with post-quantum key shares is about 2.5 KiB; TLS records are 16 KiB at most.
    object.read_integer("max_first_bytes", routing.max_first_bytes, 512, 65536);
    object.read_integer("first_bytes_timeout_ms", routing.first_bytes_timeout_ms, 1, kHour);
    object.read_integer("connect_timeout_ms", routing.connect_timeout_ms, 1, kHour);
    object.read_integer("idle_timeout_ms", routing.idle_timeout_ms, 1, 24 * kHour);
  }

  // After the services: the checks of domain_routing that depend on them.
  static void check_domain_routing(const Object& ingress_object, const std::optional<Node>& routing, const Ingress& ingress,
                                   bool services_named) {
    const DomainRouting& config = ingress.domain_routing;
    const bool routing_object = routing && routing->value().is_object();
    if (services_named && routing_object && routing->value().contains("unknown_domain") &&
        config.unknown_domain != "reject" && !config.unknown_domain.empty()) {
      const bool known = std::any_of(ingress.services.begin(), ingress.services.end(),
                                     [&](const Service& service) { return service.name == config.unknown_domain; });
      if (!known) {
        std::vector<std::string> names;
        for (const auto& service : ingress.services)
          if (!service.name.empty()) names.push_back(service.name);
        routing->error_at("unknown_domain", quote(config.unknown_domain) +
                                                " is not \"reject\" or a service of this ingress (services: " + join(names) + ")");
      }
    }
    // A port list that is present is either non-empty or reported already.
    const bool lists_ports = routing_object && (routing->value().contains("tls_ports") ||
                                                routing->value().contains("http_ports") ||
                                                routing->value().contains("dns_ports"));
    if (ingress.services.size() > 1 && !lists_ports) {
      const std::string message = "the ingress has " + std::to_string(ingress.services.size()) +
                                  " services, so it routes by domain: list at least one of tls_ports, http_ports, dns_ports";
      if (!routing) ingress_object.node().error_at("domain_routing", message);
      else if (routing_object) routing->error(message);
    }
  }

  Service read_service(const Node& node, IngressScope& scope) {
    Service service;
    const Object object(node, {"name", "domains", "lb", "client_ip", "replicas", "docker_service", "health_check"});
    if (!object.valid()) return service;

    if (const auto name = object.get("name", Need::Required); name && decode(*name, service.name)) {
      if (!valid_service_name(service.name))
        name->error(quote(service.name) +
                    " is not a valid service name (1-63 characters of A-Z, a-z, 0-9, '_', '.', '-', starting with a letter or digit)");
      else if (service.name == "reject")
        name->error("\"reject\" is reserved: domain_routing.unknown_domain uses it");
      else
        register_unique(service_names_, service.name, *name, quote(service.name));
    }

    const auto domains = object.get("domains");
    if (domains) read_domains(*domains, service.domains, scope);
    if (scope.service_count > 1 && (!domains || (domains->value().is_array() && domains->value().empty())))
      node.error_at("domains", "required when an ingress has more than one service (they are chosen by domain)");

    object.read("lb", service.lb);
    object.read("client_ip", service.client_ip);

    const auto replicas = object.get("replicas", runtime_ == Runtime::Static ? Need::Required : Need::Optional);
    if (replicas && runtime_ == Runtime::Docker) {
      replicas->error("only used with runtime \"static\"; with \"docker\" the replicas are the tasks of docker_service");
    } else if (replicas) {
      replicas->each([&](const Node& element) { service.replicas.push_back(read_replica(element, scope)); });
      if (replicas->value().is_array() && replicas->value().empty() && !allow_empty_replicas_)
        replicas->error("must not be empty");
    }

    const auto docker_service = object.get("docker_service", runtime_ == Runtime::Docker ? Need::Required : Need::Optional);
    if (docker_service && runtime_ == Runtime::Static) {
      docker_service->error("only used with runtime \"docker\"; with \"static\" list the replicas");
    } else if (docker_service) {
      std::string name;
      if (decode(*docker_service, name)) {
        if (name.empty()) docker_service->error("must not be empty");
        else service.docker_service = name;
      }
    }

    if (const auto health_check = object.get("health_check")) service.health_check = read_health_check(*health_check);
    return service;
  }

  static void read_domains(const Node& node, std::vector<std::string>& out, IngressScope& scope) {
    node.each([&](const Node& element) {
      std::string domain;
      if (!decode(element, domain)) return;
      std::transform(domain.begin(), domain.end(), domain.begin(),
                     [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
      if (const auto problem = domain_problem(domain, true)) element.error(*problem);
      else if (register_unique(scope.domains, domain, element, quote(domain))) out.push_back(domain);
    });
  }

  static Replica read_replica(const Node& node, IngressScope& scope) {
    Replica replica;
    const Object object(node, {"address", "weight"});
    object.read_integer("weight", replica.weight, 0, 1000);
    const auto member = object.get("address", Need::Required);
    if (!member || !decode(*member, replica.address)) return replica;
    if (const auto problem = scope.overlay_valid ? replica_problem(replica.address, scope.overlay) : std::nullopt)
      member->error(*problem);
    else
      register_unique(scope.replicas, replica.address, *member, quote(replica.address.to_string()));
    return replica;
  }

  // A replica is a host of the ingress's overlay subnet of its family, other than the ingress.
  static std::optional<std::string> replica_problem(const IpAddress& replica, const Overlay& overlay) {
    const std::string text = quote(replica.to_string());
    if (replica.is_v4()) {
      const auto address = replica.to_v4();
      if (!overlay.address) return text + " is IPv4 but the ingress has no IPv4 overlay (overlay.address)";
      const Ipv4Interface& subnet = *overlay.address;
      if (!contains(subnet, address)) return text + " is outside the ingress's overlay subnet " + to_text(subnet);
      if (address == subnet.address()) return text + " is the ingress's own overlay address";
      if (subnet.prefix_length() < 31 && (address == subnet.network() || address == subnet.broadcast()))
        return text + " is the network or broadcast address of " + to_text(subnet);
      return std::nullopt;
    }
    const auto address = replica.to_v6();
    if (!overlay.address6) return text + " is IPv6 but the ingress has no IPv6 overlay (overlay.address6)";
    const Ipv6Interface& subnet = *overlay.address6;
    if (!contains(subnet, address)) return text + " is outside the ingress's overlay subnet " + to_text(subnet);
    if (address == subnet.address()) return text + " is the ingress's own overlay address";
    if (subnet.prefix_length() < 127 && address == subnet.network())
      return text + " is the subnet's own address of " + to_text(subnet);
    return std::nullopt;
  }

  // Partly read values are kept: a config with errors is never handed out.
  static HealthCheck read_health_check(const Node& node) {
    HealthCheck check;
    const Object object(node, {"type", "port", "interval_ms", "timeout_ms", "fall", "rise", "http_path", "http_expect_status"});
    if (!object.valid()) return check;
    constexpr std::uint32_t kHour = 3'600'000;
    const bool type_ok = object.read("type", check.type);
    object.read_integer("port", check.port, 1, 65535, Need::Required);
    const bool interval_ok = object.read_integer("interval_ms", check.interval_ms, 1, kHour);
    const bool timeout_ok = object.read_integer("timeout_ms", check.timeout_ms, 1, kHour);
    if (interval_ok && timeout_ok && check.timeout_ms >= check.interval_ms)
      node.error_at("timeout_ms", std::to_string(check.timeout_ms) + (object.has("timeout_ms") ? "" : " (the default)") +
                                      " must be less than interval_ms (" + std::to_string(check.interval_ms) + ")");
    object.read_integer("fall", check.fall, 1, 1000);
    object.read_integer("rise", check.rise, 1, 1000);

    for (const std::string_view key : {"http_path", "http_expect_status"})
      if (object.has(key) && type_ok && check.type != HealthCheckType::Http) node.error_at(key, "only used with type \"http\"");
    if (const auto path = object.get("http_path"); path && decode(*path, check.http_path))
      if (!check.http_path.starts_with('/') || std::any_of(check.http_path.begin(), check.http_path.end(),
                                                           [](unsigned char c) { return c <= ' ' || c == 0x7f; }))
        path->error(quote(check.http_path) + " is not a request path (starts with '/', no spaces)");
    object.read_integer("http_expect_status", check.http_expect_status, 100, 599);
    return check;
  }

  // After every ingress: a service IP inside an overlay would be routed both ways.
  void check_service_ips_outside_overlays() {
    for (const auto& [address, path] : service_ips_) {
      std::vector<std::pair<std::string, std::string>> found; // subnet, where it is configured
      if (address.is_v4()) {
        for (const auto& [network, where] : subnets4_)
          if (contains(network, address.to_v4())) found.emplace_back(to_text(network), where);
      } else {
        for (const auto& [network, where] : subnets6_)
          if (contains(network, address.to_v6())) found.emplace_back(to_text(network), where);
      }
      for (const auto& [subnet, where] : found)
        errors_.push_back({path, quote(address.to_string()) + " is inside the overlay subnet " + subnet + " of " + where});
    }
  }

  Errors& errors_;
  std::optional<Runtime> runtime_; // unset when invalid: the runtime-specific checks are skipped
  bool allow_empty_replicas_ = false;
  std::optional<IpAddress> underlay_local_;
  bool underlay_invalid_ = false;
  Registry<std::string> ingress_names_;
  Registry<std::string> service_names_;
  Registry<IpAddress> service_ips_;
  Registry<std::uint32_t> vnis_;
  std::vector<std::pair<ip::network_v4, std::string>> subnets4_;
  std::vector<std::pair<ip::network_v6, std::string>> subnets6_;
};

// nlohmann::json keeps the last of two equal keys without a word; its parser callback sees every
// key, so this reports them, with their path.
class DuplicateKeyFinder {
public:
  explicit DuplicateKeyFinder(Errors& errors) : errors_(errors) {}

  bool on_event(json::parse_event_t event, const json& parsed) {
    switch (event) {
    case json::parse_event_t::object_start: levels_.push_back(Level{.array = false}); break;
    case json::parse_event_t::array_start: levels_.push_back(Level{.array = true}); break;
    case json::parse_event_t::key: {
      Level& level = levels_.back();
      level.key = parsed.get<std::string>();
      if (!level.keys.insert(level.key).second) errors_.push_back({path(), "duplicate key"});
      break;
    }
    case json::parse_event_t::object_end:
    case json::parse_event_t::array_end:
      levels_.pop_back();
      next_element();
      break;
    case json::parse_event_t::value: next_element(); break;
    }
    return true;
  }

private:
  struct Level {
    bool array;
    std::size_t index = 0;
    std::string key{};
    std::set<std::string> keys{};
  };

  void next_element() {
    if (!levels_.empty() && levels_.back().array) ++levels_.back().index;
  }

  std::string path() const {
    std::string out;
    for (const Level& level : levels_)
      out = level.array ? child_path(out, level.index) : child_path(out, level.key);
    return out;
  }

  Errors& errors_;
  std::vector<Level> levels_;
};

// "parse error at line 3, column 3: syntax error while parsing object key - unexpected '}'" →
// "invalid JSON at line 3, column 3: syntax error while parsing object key - unexpected '}'".
std::string syntax_message(std::string_view text, const json::parse_error& error) {
  const std::string what = error.what();
  const std::string marker = "parse error at ";
  if (const auto at = what.find(marker); at != std::string::npos)
    return "invalid JSON at " + what.substr(at + marker.size());
  // Another wording: count the position ourselves (byte is 1-based, the last character read).
  const std::size_t end = std::min<std::size_t>(error.byte == 0 ? 0 : error.byte - 1, text.size());
  const std::size_t line = 1 + static_cast<std::size_t>(std::count(text.begin(), text.begin() + end, '\n'));
  const auto line_start = text.substr(0, end).rfind('\n');
  const std::size_t column = end - (line_start == std::string_view::npos ? 0 : line_start + 1) + 1;
  return "invalid JSON at line " + std::to_string(line) + ", column " + std::to_string(column) + ": " + what;
}

} // namespace

std::string to_string(const Error& error) {
  return error.path.empty() ? error.message : error.path + ": " + error.message;
}

std::string_view to_string(XdpMode value) { return name_of(value); }
std::string_view to_string(Runtime value) { return name_of(value); }
std::string_view to_string(LbRule value) { return name_of(value); }
std::string_view to_string(ClientIp value) { return name_of(value); }
std::string_view to_string(FragmentPolicy value) { return name_of(value); }
std::string_view to_string(Protocol value) { return name_of(value); }
std::string_view to_string(HealthCheckType value) { return name_of(value); }

ParseResult parse(std::string_view json_text) {
  ParseResult result;
  try {
    DuplicateKeyFinder duplicates(result.errors);
    const json document = json::parse(
        json_text.begin(), json_text.end(),
        [&duplicates](int, json::parse_event_t event, json& parsed) { return duplicates.on_event(event, parsed); });
    Config config = ConfigReader(result.errors).read(Node(document, "", result.errors));
    if (result.errors.empty()) result.config = std::move(config);
  } catch (const json::parse_error& error) {
    result.errors = {{"", syntax_message(json_text, error)}};
  } catch (const json::exception& error) { // a number too large for a double, ...
    std::string what = error.what();
    if (const auto end = what.find("] "); end != std::string::npos) what.erase(0, end + 2);
    result.errors = {{"", "invalid JSON: " + what}};
  } catch (const std::exception& error) {
    result.errors.push_back({"", std::string("cannot read the configuration: ") + error.what()});
  }
  return result;
}

ParseResult load_file(const std::filesystem::path& file) {
  const auto failed = [&](int error) {
    return ParseResult{std::nullopt, {{"", "cannot read " + quote(file.string()) + ": " + std::strerror(error)}}};
  };
  const int fd = ::open(file.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return failed(errno);
  std::string text;
  char buffer[65536];
  while (true) {
    const ssize_t n = ::read(fd, buffer, sizeof buffer);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      const int error = errno;
      ::close(fd);
      return failed(error);
    }
    if (n == 0) break;
    text.append(buffer, static_cast<std::size_t>(n));
  }
  ::close(fd);
  return parse(text);
}

} // namespace xdpfwd::config
