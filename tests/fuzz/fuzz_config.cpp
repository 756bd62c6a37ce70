// Fuzzes config::parse (src/common/config.cpp) on arbitrary bytes. Invariants:
// - it never throws and never crashes: every problem comes back as an Error value;
// - a config is returned exactly when there is no error, and every error has a message;
// - no error comes from the catch-all for unexpected exceptions ("cannot read the
//   configuration: ..."): that one only hides a bug of the reader (an .at() out of range, ...);
// - a valid config is internally consistent: port lists sorted without repeats, icmp rules have
//   no ports, VNIs in range and unique, service names unique;
// - parsing is a function of the JSON value, not of its spelling: when the text is JSON without
//   duplicate keys, the document dumped by nlohmann (compact and indented) parses to the same
//   errors, or to the same config, as the original text.
#include <xdpfwd/config.hpp>

#include <nlohmann/json.hpp>

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <set>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

using namespace xdpfwd::config;

namespace {

[[noreturn]] void fail(const char* what) {
  std::fprintf(stderr, "fuzz_config invariant broken: %s\n", what);
  std::abort();
}

// Every field of the model as text: two configs are equal when their summaries are.
template <class Range>
std::string ports(const Range& list) {
  std::string out = "[";
  for (const auto port : list) out += std::to_string(port) + ",";
  return out + "]";
}

std::string summary(const Config& config) {
  std::string out;
  for (const auto& interface : config.interfaces) out += "if " + interface.name + " " + std::string(to_string(interface.xdp_mode)) + ";";
  out += std::string(to_string(config.runtime)) + ";";
  out += (config.underlay_local ? config.underlay_local->to_string() : "-") + ";";
  out += config.control_socket + ";" + config.metrics_listen + ";" + config.log_level + ";" + config.pin_dir + ";";
  out += config.docker.socket + ";" + config.docker.ingress_image + ";";
  for (const auto& ingress : config.ingresses) {
    out += "ingress " + ingress.name + " ips";
    for (const auto& address : ingress.service_ips) out += " " + address.to_string();
    out += " vni " + std::to_string(ingress.overlay.vni);
    out += " a " + (ingress.overlay.address ? ingress.overlay.address->to_string() : "-");
    out += " a6 " + (ingress.overlay.address6 ? ingress.overlay.address6->to_string() : "-");
    for (const auto& vtep : ingress.overlay.remote_vteps) out += " vtep " + vtep.to_string();
    for (const auto& rule : ingress.inspect.allow) out += " allow " + std::string(to_string(rule.protocol)) + ports(rule.ports);
    for (const auto& cidr : ingress.inspect.deny_sources)
      out += " deny " + std::visit([](const auto& network) { return network.to_string(); }, cidr);
    out += " frag " + std::string(to_string(ingress.inspect.fragments));
    if (const auto& limit = ingress.inspect.rate_limit)
      out += " rate " + std::to_string(limit->packets_per_second_per_source) + "/" + std::to_string(limit->burst);
    const auto& routing = ingress.domain_routing;
    out += " tls " + ports(routing.tls_ports) + " http " + ports(routing.http_ports) + " dns " + ports(routing.dns_ports);
    out += " unknown " + routing.unknown_domain + (routing.proxy_protocol ? " proxy" : " noproxy");
    for (const auto& service : ingress.services) {
      out += " service " + service.name + " lb " + std::string(to_string(service.lb)) + " client " +
             std::string(to_string(service.client_ip));
      for (const auto& domain : service.domains) out += " d " + domain;
      for (const auto& replica : service.replicas) out += " r " + replica.address.to_string() + "*" + std::to_string(replica.weight);
      out += " docker " + service.docker_service.value_or("-");
      if (const auto& check = service.health_check)
        out += " hc " + std::string(to_string(check->type)) + " " + std::to_string(check->port) + " " +
               std::to_string(check->interval_ms) + " " + std::to_string(check->timeout_ms) + " " +
               std::to_string(check->fall) + " " + std::to_string(check->rise) + " " + check->http_path + " " +
               std::to_string(check->http_expect_status);
    }
    out += ";";
  }
  return out;
}

std::string errors_text(const std::vector<Error>& errors) {
  std::string out;
  for (const auto& error : errors) out += to_string(error) + "\n";
  return out;
}

template <class Range>
bool sorted_unique(const Range& list) {
  for (std::size_t i = 1; i < list.size(); ++i)
    if (list[i - 1] >= list[i]) return false;
  return true;
}

void check_result(const ParseResult& result) {
  if (result.config.has_value() == !result.errors.empty()) fail("config set exactly when there is no error");
  for (const auto& error : result.errors) {
    if (error.message.empty()) fail("an error without a message");
    if (error.message.rfind("cannot read the configuration", 0) == 0) {
      std::fprintf(stderr, "%s\n", to_string(error).c_str());
      fail("an unexpected exception inside the reader");
    }
  }
  if (!result.config) return;
  std::set<std::string> names;
  std::set<std::uint32_t> vnis;
  for (const auto& ingress : result.config->ingresses) {
    if (ingress.overlay.vni == 0 || ingress.overlay.vni >= (1u << 24)) fail("VNI out of range");
    if (!vnis.insert(ingress.overlay.vni).second) fail("VNI used twice");
    for (const auto& rule : ingress.inspect.allow) {
      if (!sorted_unique(rule.ports)) fail("allow ports not sorted and unique");
      if (rule.protocol == Protocol::Icmp && !rule.ports.empty()) fail("icmp rule with ports");
    }
    if (!sorted_unique(ingress.domain_routing.tls_ports) || !sorted_unique(ingress.domain_routing.http_ports) ||
        !sorted_unique(ingress.domain_routing.dns_ports))
      fail("domain routing ports not sorted and unique");
    for (const auto& service : ingress.services)
      if (!names.insert(service.name).second) fail("service name used twice");
  }
}

bool has_duplicate_key_error(const ParseResult& result) {
  for (const auto& error : result.errors)
    if (error.message.find("duplicate") != std::string::npos) return true;
  return false;
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  ParseResult first;
  try {
    first = parse(text);
  } catch (...) {
    fail("parse threw");
  }
  check_result(first);

  // Only JSON texts have a canonical spelling to compare with.
  if (!nlohmann::json::accept(text.begin(), text.end()) || has_duplicate_key_error(first)) return 0;
  const nlohmann::json document = nlohmann::json::parse(text.begin(), text.end());
  for (const int indent : {-1, 2}) {
    ParseResult again;
    try {
      again = parse(document.dump(indent));
    } catch (...) {
      fail("parse of the dumped document threw");
    }
    check_result(again);
    if (errors_text(again.errors) != errors_text(first.errors)) {
      std::fprintf(stderr, "original:\n%sdumped:\n%s", errors_text(first.errors).c_str(),
                   errors_text(again.errors).c_str());
      fail("the dumped document has other errors than the original");
    }
    if (first.config && summary(*again.config) != summary(*first.config)) {
      std::fprintf(stderr, "original: %s\ndumped: %s\n", summary(*first.config).c_str(), summary(*again.config).c_str());
      fail("the dumped document is another config");
    }
  }
  return 0;
}
