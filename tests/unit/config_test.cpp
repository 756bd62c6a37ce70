// The config model: the example files, the defaults, every validation rule (with the path and the
// message an operator sees), and how JSON and file errors are reported.
#include "xdpfwd/config.hpp"

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <functional>
#include <string>

namespace xdpfwd::config {
namespace {

using nlohmann::json;

const std::filesystem::path kConfigDir = std::filesystem::path(__FILE__).parent_path() / "../../config";

// The smallest valid static config; each case below breaks one thing in it.
json minimal() {
  return json::parse(R"({
    "interfaces": [ { "name": "eth0" } ],
    "ingresses": [ {
      "name": "waf",
      "service_ips": [ "198.18.0.10" ],
      "overlay": { "vni": 4101, "address": "10.201.0.1/24" },
      "services": [ { "name": "waf-a", "replicas": [ { "address": "10.201.0.11" } ] } ]
    } ]
  })");
}

json& ingress(json& document, std::size_t index = 0) { return document["ingresses"][index]; }
json& service(json& document, std::size_t index = 0) { return ingress(document)["services"][index]; }

// A second, valid ingress that shares nothing with the first.
void add_ingress(json& document) {
  document["ingresses"].push_back(json::parse(R"({
    "name": "sia",
    "service_ips": [ "198.18.0.20" ],
    "overlay": { "vni": 4102, "address": "10.202.0.1/24" },
    "services": [ { "name": "proxy", "replicas": [ { "address": "10.202.0.11" } ] } ]
  })"));
}

// A second service in the first ingress, routed by domain.
void add_service(json& document) {
  service(document)["domains"] = {"a.example.test"};
  ingress(document)["services"].push_back(
      {{"name", "waf-b"}, {"domains", {"b.example.test"}}, {"replicas", {{{"address", "10.201.0.21"}}}}});
  ingress(document)["domain_routing"] = {{"tls_ports", {443}}};
}

void to_docker(json& document) {
  document["runtime"] = "docker";
  for (json& each : document["ingresses"])
    for (json& svc : each["services"]) {
      svc.erase("replicas");
      svc["docker_service"] = svc["name"];
    }
}

ParseResult parse_json(const json& document) { return parse(document.dump(2)); }

std::string all(const std::vector<Error>& errors) {
  std::string out;
  for (const auto& error : errors) out += "\n  " + to_string(error);
  return out;
}

bool has_error(const ParseResult& result, const std::string& path, const std::string& fragment) {
  return std::any_of(result.errors.begin(), result.errors.end(), [&](const Error& error) {
    return error.path == path && error.message.find(fragment) != std::string::npos;
  });
}

// ------------------------------------------------------------------------------------------------
// The example files.

TEST(ConfigExamples, StaticExampleIsValid) {
  const auto result = load_file(kConfigDir / "services.json");
  ASSERT_TRUE(result.errors.empty()) << all(result.errors);
  ASSERT_TRUE(result.config);
  const Config& config = *result.config;
  EXPECT_EQ(config.runtime, Runtime::Static);
  ASSERT_GE(config.ingresses.size(), 2u);
  EXPECT_EQ(config.ingresses[0].name, "waf");
  EXPECT_EQ(config.ingresses[0].overlay.vni, 4101u);
  EXPECT_EQ(config.underlay_local, boost::asio::ip::make_address("198.18.2.1"));
}

TEST(ConfigExamples, DockerExampleIsValid) {
  const auto result = load_file(kConfigDir / "services.docker.json");
  ASSERT_TRUE(result.errors.empty()) << all(result.errors);
  ASSERT_TRUE(result.config);
  EXPECT_EQ(result.config->runtime, Runtime::Docker);
  for (const auto& each : result.config->ingresses)
    for (const auto& svc : each.services) {
      EXPECT_TRUE(svc.docker_service) << svc.name;
      EXPECT_TRUE(svc.replicas.empty()) << svc.name;
    }
}

// ------------------------------------------------------------------------------------------------
// Defaults and normalisation.

TEST(ConfigDefaults, OmittedFieldsTakeTheDocumentedDefaults) {
  const auto result = parse_json(minimal());
  ASSERT_TRUE(result.errors.empty()) << all(result.errors);
  const Config& config = *result.config;
  EXPECT_EQ(config.interfaces.at(0).xdp_mode, XdpMode::Auto);
  EXPECT_EQ(config.runtime, Runtime::Static);
  EXPECT_FALSE(config.underlay_local);
  EXPECT_EQ(config.control_socket, "/run/xdpfwd/control.sock");
  EXPECT_EQ(config.metrics_listen, "127.0.0.1:9469");
  EXPECT_EQ(config.log_level, "info");
  EXPECT_EQ(config.pin_dir, "/sys/fs/bpf/xdpfwd");
  EXPECT_EQ(config.docker.socket, "/var/run/docker.sock");
  EXPECT_EQ(config.docker.ingress_image, "xdpfwd-ingress:latest");

  const Ingress& in = config.ingresses.at(0);
  EXPECT_FALSE(in.overlay.address6);
  EXPECT_TRUE(in.overlay.remote_vteps.empty());
  EXPECT_TRUE(in.inspect.allow.empty());
  EXPECT_TRUE(in.inspect.deny_sources.empty());
  EXPECT_EQ(in.inspect.fragments, FragmentPolicy::Drop);
  EXPECT_FALSE(in.inspect.rate_limit);
  EXPECT_TRUE(in.domain_routing.tls_ports.empty());
  EXPECT_EQ(in.domain_routing.unknown_domain, "reject");
  EXPECT_FALSE(in.domain_routing.proxy_protocol);
  EXPECT_EQ(in.domain_routing.max_connections, 4096u);
  EXPECT_EQ(in.domain_routing.max_first_bytes, 16384u);
  EXPECT_EQ(in.domain_routing.first_bytes_timeout_ms, 5000u);
  EXPECT_EQ(in.domain_routing.connect_timeout_ms, 3000u);
  EXPECT_EQ(in.domain_routing.idle_timeout_ms, 300000u);

  const Service& svc = in.services.at(0);
  EXPECT_TRUE(svc.domains.empty());
  EXPECT_EQ(svc.lb, LbRule::Maglev);
  EXPECT_EQ(svc.client_ip, ClientIp::Nat);
  EXPECT_EQ(svc.replicas.at(0).weight, 1u);
  EXPECT_FALSE(svc.docker_service);
  EXPECT_FALSE(svc.health_check);
}

TEST(ConfigDefaults, HealthCheckDefaults) {
  json document = minimal();
  service(document)["health_check"] = {{"port", 80}};
  const auto result = parse_json(document);
  ASSERT_TRUE(result.errors.empty()) << all(result.errors);
  const HealthCheck& check = *result.config->ingresses[0].services[0].health_check;
  EXPECT_EQ(check.type, HealthCheckType::Tcp);
  EXPECT_EQ(check.port, 80);
  EXPECT_EQ(check.interval_ms, 1000u);
  EXPECT_EQ(check.timeout_ms, 500u);
  EXPECT_EQ(check.fall, 3u);
  EXPECT_EQ(check.rise, 2u);
  EXPECT_EQ(check.http_path, "/");
  EXPECT_EQ(check.http_expect_status, 200u);
}

TEST(ConfigDefaults, RateLimitBurstDefaultsToTheRate) {
  json document = minimal();
  ingress(document)["inspect"] = {{"rate_limit", {{"packets_per_second_per_source", 1000}}}};
  const auto result = parse_json(document);
  ASSERT_TRUE(result.errors.empty()) << all(result.errors);
  const RateLimit& limit = *result.config->ingresses[0].inspect.rate_limit;
  EXPECT_EQ(limit.packets_per_second_per_source, 1000u);
  EXPECT_EQ(limit.burst, 1000u);
}

TEST(ConfigDefaults, MaxFlowsDefaultsAndIsRead) {
  json document = minimal();
  auto result = parse_json(document);
  ASSERT_TRUE(result.errors.empty()) << all(result.errors);
  EXPECT_EQ(result.config->ingresses[0].max_flows, 262144u);
  ingress(document)["max_flows"] = 1048576;
  result = parse_json(document);
  ASSERT_TRUE(result.errors.empty()) << all(result.errors);
  EXPECT_EQ(result.config->ingresses[0].max_flows, 1048576u);
}

TEST(ConfigDefaults, PortRangesAreExpandedSortedAndWithoutRepeats) {
  json document = minimal();
  ingress(document)["inspect"] = {{"allow", {{{"proto", "tcp"}, {"ports", {443, "8000-8003", 80, 8001}}}}}};
  const auto result = parse_json(document);
  ASSERT_TRUE(result.errors.empty()) << all(result.errors);
  EXPECT_EQ(result.config->ingresses[0].inspect.allow.at(0).ports,
            (std::vector<std::uint16_t>{80, 443, 8000, 8001, 8002, 8003}));
}

TEST(ConfigDefaults, DomainsAreLowerCased) {
  json document = minimal();
  service(document)["domains"] = {"A.Example.TEST", "*.B.example.test"};
  const auto result = parse_json(document);
  ASSERT_TRUE(result.errors.empty()) << all(result.errors);
  EXPECT_EQ(result.config->ingresses[0].services[0].domains,
            (std::vector<std::string>{"a.example.test", "*.b.example.test"}));
}

TEST(ConfigDefaults, DenySourcesTakeNetworksAndSingleAddresses) {
  json document = minimal();
  ingress(document)["inspect"] = {{"deny_sources", {"198.19.66.0/24", "198.19.67.1", "fd00:66::/48"}}};
  const auto result = parse_json(document);
  ASSERT_TRUE(result.errors.empty()) << all(result.errors);
  const auto& deny = result.config->ingresses[0].inspect.deny_sources;
  ASSERT_EQ(deny.size(), 3u);
  EXPECT_EQ(std::get<boost::asio::ip::network_v4>(deny[1]).prefix_length(), 32);
  EXPECT_EQ(std::get<boost::asio::ip::network_v6>(deny[2]).prefix_length(), 48);
}

TEST(ConfigDefaults, ListenTakesBracketedIpv6AndHostNames) {
  for (const char* listen : {"[::1]:9469", "localhost:9469", "0.0.0.0:1"}) {
    json document = minimal();
    document["metrics"] = {{"listen", listen}};
    EXPECT_TRUE(parse_json(document).errors.empty()) << listen << all(parse_json(document).errors);
  }
}

TEST(ConfigDefaults, SingleServiceIngressNeedsNoDomainRouting) {
  json document = minimal();
  add_ingress(document);
  const auto result = parse_json(document);
  EXPECT_TRUE(result.errors.empty()) << all(result.errors);
}

TEST(ConfigDefaults, UnknownDomainMayNameAServiceOfTheIngress) {
  json document = minimal();
  add_service(document);
  ingress(document)["domain_routing"]["unknown_domain"] = "waf-b";
  const auto result = parse_json(document);
  ASSERT_TRUE(result.errors.empty()) << all(result.errors);
  EXPECT_EQ(result.config->ingresses[0].domain_routing.unknown_domain, "waf-b");
}

// What the daemon hands a runtime-docker inspector whose service has no running task.
TEST(ConfigDefaults, AllowEmptyReplicasLetsAStaticServiceHaveNone) {
  json document = minimal();
  add_service(document);
  service(document)["replicas"] = json::array();
  ingress(document)["domain_routing"]["unknown_domain"] = "waf-a";
  EXPECT_FALSE(parse_json(document).errors.empty()) << "empty replicas need allow_empty_replicas";
  document["allow_empty_replicas"] = true;
  const auto result = parse_json(document);
  ASSERT_TRUE(result.errors.empty()) << all(result.errors);
  EXPECT_TRUE(result.config->allow_empty_replicas);
  EXPECT_TRUE(result.config->ingresses[0].services[0].replicas.empty());
  EXPECT_EQ(result.config->ingresses[0].services[1].replicas.size(), 1u);
  EXPECT_FALSE(parse_json(minimal()).config->allow_empty_replicas);
}

TEST(ConfigDefaults, ProxyLimitsAreRead) {
  json document = minimal();
  ingress(document)["domain_routing"] = {{"tls_ports", {443}}, {"max_connections", 10}, {"max_first_bytes", 4096},
                                         {"first_bytes_timeout_ms", 200}, {"connect_timeout_ms", 300},
                                         {"idle_timeout_ms", 400}};
  const auto result = parse_json(document);
  ASSERT_TRUE(result.errors.empty()) << all(result.errors);
  const auto& routing = result.config->ingresses[0].domain_routing;
  EXPECT_EQ(routing.max_connections, 10u);
  EXPECT_EQ(routing.max_first_bytes, 4096u);
  EXPECT_EQ(routing.first_bytes_timeout_ms, 200u);
  EXPECT_EQ(routing.connect_timeout_ms, 300u);
  EXPECT_EQ(routing.idle_timeout_ms, 400u);
}

TEST(ConfigDefaults, EnumNamesRoundTrip) {
  EXPECT_EQ(to_string(XdpMode::Generic), "generic");
  EXPECT_EQ(to_string(Runtime::Docker), "docker");
  EXPECT_EQ(to_string(LbRule::LeastConn), "least_conn");
  EXPECT_EQ(to_string(ClientIp::Preserve), "preserve");
  EXPECT_EQ(to_string(FragmentPolicy::Allow), "allow");
  EXPECT_EQ(to_string(Protocol::Icmp), "icmp");
  EXPECT_EQ(to_string(HealthCheckType::Dns), "dns");
}

// ------------------------------------------------------------------------------------------------
// One case per rule: break one thing in the minimal config, get exactly one error, at this path,
// saying this.

struct Case {
  std::string name;
  std::function<void(json&)> mutate;
  std::string path;
  std::string message; // a fragment of the message
};

std::ostream& operator<<(std::ostream& out, const Case& c) { return out << c.name; }

class ConfigRule : public testing::TestWithParam<Case> {};

TEST_P(ConfigRule, ReportsOneErrorAtItsPath) {
  json document = minimal();
  GetParam().mutate(document);
  const auto result = parse_json(document);
  EXPECT_FALSE(result.config);
  ASSERT_EQ(result.errors.size(), 1u) << all(result.errors);
  EXPECT_EQ(result.errors[0].path, GetParam().path) << all(result.errors);
  EXPECT_NE(result.errors[0].message.find(GetParam().message), std::string::npos) << all(result.errors);
}

const Case kTopLevel[] = {
    {"DocumentNotAnObject", [](json& d) { d = json::array(); }, "", "expected an object, got an array"},
    {"InterfacesMissing", [](json& d) { d.erase("interfaces"); }, "interfaces", "required key is missing"},
    {"InterfacesEmpty", [](json& d) { d["interfaces"] = json::array(); }, "interfaces", "must not be empty"},
    {"InterfacesNotArray", [](json& d) { d["interfaces"] = json::object(); }, "interfaces", "expected an array, got an object"},
    {"InterfaceNameMissing", [](json& d) { d["interfaces"][0].erase("name"); }, "interfaces[0].name", "required key is missing"},
    {"InterfaceNameTooLong", [](json& d) { d["interfaces"][0]["name"] = "abcdefghijklmnop"; }, "interfaces[0].name",
     "\"abcdefghijklmnop\" is not a valid interface name"},
    {"InterfaceNameEmpty", [](json& d) { d["interfaces"][0]["name"] = ""; }, "interfaces[0].name", "is not a valid interface name"},
    {"InterfaceNameSlash", [](json& d) { d["interfaces"][0]["name"] = "eth/0"; }, "interfaces[0].name", "is not a valid interface name"},
    {"InterfaceNameColon", [](json& d) { d["interfaces"][0]["name"] = "eth0:1"; }, "interfaces[0].name", "is not a valid interface name"},
    {"InterfaceNameSpace", [](json& d) { d["interfaces"][0]["name"] = "eth 0"; }, "interfaces[0].name", "is not a valid interface name"},
    {"InterfaceNameNumber", [](json& d) { d["interfaces"][0]["name"] = 0; }, "interfaces[0].name", "expected a string, got 0"},
    {"InterfaceDuplicate", [](json& d) { d["interfaces"].push_back({{"name", "eth0"}}); }, "interfaces[1].name",
     "\"eth0\" is already used by interfaces[0].name"},
    {"XdpMode", [](json& d) { d["interfaces"][0]["xdp_mode"] = "fast"; }, "interfaces[0].xdp_mode",
     "\"fast\" is not one of auto, native, generic"},
    {"Runtime", [](json& d) { d["runtime"] = "podman"; }, "runtime", "\"podman\" is not one of static, docker"},
    {"RuntimeType", [](json& d) { d["runtime"] = 1; }, "runtime", "expected a string, got 1"},
    {"AllowEmptyReplicasType", [](json& d) { d["allow_empty_replicas"] = "yes"; }, "allow_empty_replicas",
     "expected true or false"},
    {"UnderlayLocal", [](json& d) { d["underlay"] = {{"local", "198.18.2.x"}}; }, "underlay.local",
     "\"198.18.2.x\" is not an IP address"},
    {"UnderlayLocalLoopback", [](json& d) { d["underlay"] = {{"local", "127.0.0.1"}}; }, "underlay.local", "is a loopback address"},
    {"LogLevel", [](json& d) { d["log"] = {{"level", "verbose"}}; }, "log.level",
     "\"verbose\" is not one of trace, debug, info, warn, error, critical, off"},
    {"MetricsListenNoPort", [](json& d) { d["metrics"] = {{"listen", "127.0.0.1"}}; }, "metrics.listen", "is not \"host:port\""},
    {"MetricsListenBadPort", [](json& d) { d["metrics"] = {{"listen", "127.0.0.1:0"}}; }, "metrics.listen", "is not a port number"},
    {"MetricsListenPortTooLarge", [](json& d) { d["metrics"] = {{"listen", "127.0.0.1:70000"}}; }, "metrics.listen",
     "is not a port number"},
    {"MetricsListenUnbracketedV6", [](json& d) { d["metrics"] = {{"listen", "::1:9469"}}; }, "metrics.listen", "in brackets"},
    {"MetricsListenBadV6", [](json& d) { d["metrics"] = {{"listen", "[127.0.0.1]:9469"}}; }, "metrics.listen",
     "is not an IPv6 address"},
    {"MetricsListenBadHost", [](json& d) { d["metrics"] = {{"listen", "local host:9469"}}; }, "metrics.listen",
     "is not an IPv4 address or a host name"},
    {"ControlSocketRelative", [](json& d) { d["control_socket"] = "run/xdpfwd.sock"; }, "control_socket",
     "is not an absolute path"},
    {"ControlSocketTooLong", [](json& d) { d["control_socket"] = "/" + std::string(120, 'a'); }, "control_socket",
     "a unix socket path has at most 107"},
    {"PinDirRelative", [](json& d) { d["pin_dir"] = "sys/fs/bpf/xdpfwd"; }, "pin_dir", "is not an absolute path"},
    {"PinDirTrailingSlash", [](json& d) { d["pin_dir"] = "/sys/fs/bpf/xdpfwd/"; }, "pin_dir",
     "is not normalised (did you mean \"/sys/fs/bpf/xdpfwd\"?)"},
    {"PinDirDotDot", [](json& d) { d["pin_dir"] = "/sys/fs/bpf/x/../xdpfwd"; }, "pin_dir", "is not normalised"},
    {"PinDirDoubleSlash", [](json& d) { d["pin_dir"] = "/sys/fs//bpf/xdpfwd"; }, "pin_dir", "is not normalised"},
    {"DockerSocketRelative", [](json& d) { d["docker"] = {{"socket", "docker.sock"}}; }, "docker.socket",
     "is not an absolute path"},
    {"DockerImageEmpty", [](json& d) { d["docker"] = {{"ingress_image", ""}}; }, "docker.ingress_image",
     "is not an image reference"},
};

const Case kIngress[] = {
    {"IngressesMissing", [](json& d) { d.erase("ingresses"); }, "ingresses", "required key is missing"},
    {"IngressesEmpty", [](json& d) { d["ingresses"] = json::array(); }, "ingresses", "must not be empty"},
    {"IngressNotObject", [](json& d) { d["ingresses"][0] = "waf"; }, "ingresses[0]", "expected an object, got \"waf\""},
    {"NameMissing", [](json& d) { ingress(d).erase("name"); }, "ingresses[0].name", "required key is missing"},
    {"NameUpperCase", [](json& d) { ingress(d)["name"] = "WAF"; }, "ingresses[0].name", "\"WAF\" is not a valid ingress name"},
    {"NameTooLong", [](json& d) { ingress(d)["name"] = "abcdefghijklm"; }, "ingresses[0].name", "is not a valid ingress name"},
    {"NameLeadingDash", [](json& d) { ingress(d)["name"] = "-waf"; }, "ingresses[0].name", "is not a valid ingress name"},
    {"NameTrailingDash", [](json& d) { ingress(d)["name"] = "waf-"; }, "ingresses[0].name", "is not a valid ingress name"},
    {"NameEmpty", [](json& d) { ingress(d)["name"] = ""; }, "ingresses[0].name", "is not a valid ingress name"},
    {"NameDuplicate",
     [](json& d) {
       add_ingress(d);
       ingress(d, 1)["name"] = "waf";
     },
     "ingresses[1].name", "\"waf\" is already used by ingresses[0].name"},
    {"MaxFlowsTooSmall", [](json& d) { ingress(d)["max_flows"] = 4095; }, "ingresses[0].max_flows",
     "4095 is out of range (4096-16777216)"},
    {"MaxFlowsTooLarge", [](json& d) { ingress(d)["max_flows"] = 16777217; }, "ingresses[0].max_flows",
     "16777217 is out of range (4096-16777216)"},
    {"ServiceIpsMissing", [](json& d) { ingress(d).erase("service_ips"); }, "ingresses[0].service_ips", "required key is missing"},
    {"ServiceIpsEmpty", [](json& d) { ingress(d)["service_ips"] = json::array(); }, "ingresses[0].service_ips",
     "must not be empty"},
    {"ServiceIpInvalid", [](json& d) { ingress(d)["service_ips"].push_back("198.18.0.300"); }, "ingresses[0].service_ips[1]",
     "\"198.18.0.300\" is not an IP address"},
    {"ServiceIpWithPrefix", [](json& d) { ingress(d)["service_ips"][0] = "198.18.0.10/32"; }, "ingresses[0].service_ips[0]",
     "is not an IP address"},
    {"ServiceIpUnspecified", [](json& d) { ingress(d)["service_ips"][0] = "0.0.0.0"; }, "ingresses[0].service_ips[0]",
     "\"0.0.0.0\" is the unspecified address"},
    {"ServiceIpUnspecified6", [](json& d) { ingress(d)["service_ips"][0] = "::"; }, "ingresses[0].service_ips[0]",
     "is the unspecified address"},
    {"ServiceIpLoopback", [](json& d) { ingress(d)["service_ips"][0] = "127.0.0.53"; }, "ingresses[0].service_ips[0]",
     "is a loopback address"},
    {"ServiceIpLoopback6", [](json& d) { ingress(d)["service_ips"][0] = "::1"; }, "ingresses[0].service_ips[0]",
     "is a loopback address"},
    {"ServiceIpMulticast", [](json& d) { ingress(d)["service_ips"][0] = "224.0.0.1"; }, "ingresses[0].service_ips[0]",
     "is a multicast address"},
    {"ServiceIpMulticast6", [](json& d) { ingress(d)["service_ips"][0] = "ff02::1"; }, "ingresses[0].service_ips[0]",
     "is a multicast address"},
    {"ServiceIpDuplicateInIngress", [](json& d) { ingress(d)["service_ips"].push_back("198.18.0.10"); },
     "ingresses[0].service_ips[1]", "\"198.18.0.10\" is already used by ingresses[0].service_ips[0]"},
    {"ServiceIpDuplicateAcrossIngresses",
     [](json& d) {
       add_ingress(d);
       ingress(d, 1)["service_ips"][0] = "198.18.0.10";
     },
     "ingresses[1].service_ips[0]", "\"198.18.0.10\" is already used by ingresses[0].service_ips[0]"},
    {"ServiceIpSameAddressWrittenDifferently",
     [](json& d) { ingress(d)["service_ips"] = {"fd00:18::10", "fd00:18:0:0::10"}; }, "ingresses[0].service_ips[1]",
     "is already used by ingresses[0].service_ips[0]"},
    {"ServiceIpInsideAnOverlay",
     [](json& d) {
       add_ingress(d);
       ingress(d, 1)["service_ips"][0] = "10.201.0.200";
     },
     "ingresses[1].service_ips[0]", "\"10.201.0.200\" is inside the overlay subnet 10.201.0.0/24 of ingresses[0].overlay.address"},
    {"ServiceIpInsideAnOverlay6",
     [](json& d) {
       ingress(d)["overlay"]["address6"] = "fd00:201::1/64";
       ingress(d)["service_ips"].push_back("fd00:201::99");
     },
     "ingresses[0].service_ips[1]", "is inside the overlay subnet fd00:201::/64 of ingresses[0].overlay.address6"},
};

const Case kOverlay[] = {
    {"Missing", [](json& d) { ingress(d).erase("overlay"); }, "ingresses[0].overlay", "required key is missing"},
    {"VniMissing", [](json& d) { ingress(d)["overlay"].erase("vni"); }, "ingresses[0].overlay.vni", "required key is missing"},
    {"VniZero", [](json& d) { ingress(d)["overlay"]["vni"] = 0; }, "ingresses[0].overlay.vni", "0 is out of range (1-16777215)"},
    {"VniTooLarge", [](json& d) { ingress(d)["overlay"]["vni"] = 16777216; }, "ingresses[0].overlay.vni",
     "16777216 is out of range (1-16777215)"},
    {"VniNegative", [](json& d) { ingress(d)["overlay"]["vni"] = -1; }, "ingresses[0].overlay.vni", "-1 is out of range"},
    {"VniString", [](json& d) { ingress(d)["overlay"]["vni"] = "4101"; }, "ingresses[0].overlay.vni",
     "expected an integer, got \"4101\""},
    {"VniFraction", [](json& d) { ingress(d)["overlay"]["vni"] = 4101.5; }, "ingresses[0].overlay.vni", "expected an integer"},
    {"VniDuplicate",
     [](json& d) {
       add_ingress(d);
       ingress(d, 1)["overlay"]["vni"] = 4101;
     },
     "ingresses[1].overlay.vni", "VNI 4101 is already used by ingresses[0].overlay.vni"},
    {"NoAddress", [](json& d) { ingress(d)["overlay"].erase("address"); }, "ingresses[0].overlay",
     "needs \"address\" (IPv4), \"address6\" (IPv6) or both"},
    {"AddressWithoutPrefix", [](json& d) { ingress(d)["overlay"]["address"] = "10.201.0.1"; }, "ingresses[0].overlay.address",
     "\"10.201.0.1\" is not an address with a prefix length, like \"10.201.0.1/24\""},
    {"AddressBadPrefix", [](json& d) { ingress(d)["overlay"]["address"] = "10.201.0.1/33"; }, "ingresses[0].overlay.address",
     "is not an address with a prefix length"},
    {"AddressIsV6", [](json& d) { ingress(d)["overlay"]["address"] = "fd00:201::1/64"; }, "ingresses[0].overlay.address",
     "is not an IPv4 address (IPv6 goes in \"address6\")"},
    {"Address6IsV4", [](json& d) { ingress(d)["overlay"]["address6"] = "10.9.0.1/24"; }, "ingresses[0].overlay.address6",
     "is not an IPv6 address"},
    {"AddressIsTheNetwork", [](json& d) { ingress(d)["overlay"]["address"] = "10.201.0.0/24"; }, "ingresses[0].overlay.address",
     "is the subnet's network or broadcast address"},
    {"Address6IsTheSubnet", [](json& d) { ingress(d)["overlay"]["address6"] = "fd00:201::/64"; },
     "ingresses[0].overlay.address6", "is the subnet's own address"},
    {"OverlapsAnotherIngress",
     [](json& d) {
       add_ingress(d);
       ingress(d, 1)["overlay"]["address"] = "10.201.128.1/16";
       ingress(d, 1)["services"][0]["replicas"][0]["address"] = "10.201.128.11";
     },
     "ingresses[1].overlay.address", "subnet 10.201.0.0/16 overlaps 10.201.0.0/24 of ingresses[0].overlay.address"},
    {"Overlaps6",
     [](json& d) {
       add_ingress(d);
       ingress(d)["overlay"]["address6"] = "fd00:201::1/64";
       ingress(d, 1)["overlay"]["address6"] = "fd00:201::2/120";
     },
     "ingresses[1].overlay.address6", "overlaps fd00:201::/64 of ingresses[0].overlay.address6"},
    {"RemoteVtepsNeedUnderlayLocal", [](json& d) { ingress(d)["overlay"]["remote_vteps"] = {"198.18.2.2"}; },
     "ingresses[0].overlay.remote_vteps", "needs underlay.local"},
    {"RemoteVtepInvalid",
     [](json& d) {
       d["underlay"] = {{"local", "198.18.2.1"}};
       ingress(d)["overlay"]["remote_vteps"] = {"198.18.2.256"};
     },
     "ingresses[0].overlay.remote_vteps[0]", "\"198.18.2.256\" is not an IP address"},
    {"RemoteVtepOtherFamily",
     [](json& d) {
       d["underlay"] = {{"local", "198.18.2.1"}};
       ingress(d)["overlay"]["remote_vteps"] = {"fd00:2::2"};
     },
     "ingresses[0].overlay.remote_vteps[0]", "is of another address family than underlay.local"},
    {"RemoteVtepIsLocal",
     [](json& d) {
       d["underlay"] = {{"local", "198.18.2.1"}};
       ingress(d)["overlay"]["remote_vteps"] = {"198.18.2.1"};
     },
     "ingresses[0].overlay.remote_vteps[0]", "is underlay.local"},
    {"RemoteVtepDuplicate",
     [](json& d) {
       d["underlay"] = {{"local", "198.18.2.1"}};
       ingress(d)["overlay"]["remote_vteps"] = {"198.18.2.2", "198.18.2.2"};
     },
     "ingresses[0].overlay.remote_vteps[1]", "is already used by ingresses[0].overlay.remote_vteps[0]"},
};

const Case kInspect[] = {
    {"AllowProto", [](json& d) { ingress(d)["inspect"] = {{"allow", {{{"proto", "sctp"}}}}}; },
     "ingresses[0].inspect.allow[0].proto", "\"sctp\" is not one of tcp, udp, icmp"},
    {"AllowProtoMissing", [](json& d) { ingress(d)["inspect"] = {{"allow", {{{"ports", {80}}}}}}; },
     "ingresses[0].inspect.allow[0].proto", "required key is missing"},
    {"AllowPortZero", [](json& d) { ingress(d)["inspect"] = {{"allow", {{{"proto", "tcp"}, {"ports", {80, 0}}}}}}; },
     "ingresses[0].inspect.allow[0].ports[1]", "0 is out of range (1-65535)"},
    {"AllowPortTooLarge", [](json& d) { ingress(d)["inspect"] = {{"allow", {{{"proto", "udp"}, {"ports", {65536}}}}}}; },
     "ingresses[0].inspect.allow[0].ports[0]", "65536 is out of range (1-65535)"},
    {"AllowPortRangeReversed",
     [](json& d) { ingress(d)["inspect"] = {{"allow", {{{"proto", "tcp"}, {"ports", {"8100-8000"}}}}}}; },
     "ingresses[0].inspect.allow[0].ports[0]", "\"8100-8000\" is not a port range"},
    {"AllowPortRangeGarbage", [](json& d) { ingress(d)["inspect"] = {{"allow", {{{"proto", "tcp"}, {"ports", {"http"}}}}}}; },
     "ingresses[0].inspect.allow[0].ports[0]", "is not a port range"},
    {"AllowPortsEmpty", [](json& d) { ingress(d)["inspect"] = {{"allow", {{{"proto", "tcp"}, {"ports", json::array()}}}}}; },
     "ingresses[0].inspect.allow[0].ports", "must not be empty"},
    {"AllowIcmpWithPorts", [](json& d) { ingress(d)["inspect"] = {{"allow", {{{"proto", "icmp"}, {"ports", {8}}}}}}; },
     "ingresses[0].inspect.allow[0].ports", "icmp has no ports"},
    {"DenySourceHostBits", [](json& d) { ingress(d)["inspect"] = {{"deny_sources", {"198.19.66.1/24"}}}; },
     "ingresses[0].inspect.deny_sources[0]", "\"198.19.66.1/24\" has host bits set (did you mean \"198.19.66.0/24\"?)"},
    {"DenySourceHostBits6", [](json& d) { ingress(d)["inspect"] = {{"deny_sources", {"fd00:66::1/48"}}}; },
     "ingresses[0].inspect.deny_sources[0]", "has host bits set (did you mean \"fd00:66::/48\"?)"},
    {"DenySourceGarbage", [](json& d) { ingress(d)["inspect"] = {{"deny_sources", {"198.19.66.0/40"}}}; },
     "ingresses[0].inspect.deny_sources[0]", "is not an address or a network"},
    {"Fragments", [](json& d) { ingress(d)["inspect"] = {{"fragments", "reassemble"}}; }, "ingresses[0].inspect.fragments",
     "\"reassemble\" is not one of drop, allow"},
    {"RateLimitZero",
     [](json& d) { ingress(d)["inspect"] = {{"rate_limit", {{"packets_per_second_per_source", 0}, {"burst", 10}}}}; },
     "ingresses[0].inspect.rate_limit.packets_per_second_per_source", "0 is out of range (at least 1)"},
    {"RateLimitBurstZero",
     [](json& d) { ingress(d)["inspect"] = {{"rate_limit", {{"packets_per_second_per_source", 10}, {"burst", 0}}}}; },
     "ingresses[0].inspect.rate_limit.burst", "0 is out of range (at least 1)"},
    {"RateLimitMissingRate", [](json& d) { ingress(d)["inspect"] = {{"rate_limit", {{"burst", 10}}}}; },
     "ingresses[0].inspect.rate_limit.packets_per_second_per_source", "required key is missing"},
};

const Case kDomainRouting[] = {
    {"PortInTwoLists",
     [](json& d) { ingress(d)["domain_routing"] = {{"tls_ports", {443}}, {"http_ports", {80, 443}}}; },
     "ingresses[0].domain_routing.http_ports", "port 443 is also in tls_ports"},
    {"PortInvalid", [](json& d) { ingress(d)["domain_routing"] = {{"dns_ports", {0}}}; }, "ingresses[0].domain_routing.dns_ports[0]",
     "0 is out of range (1-65535)"},
    {"UnknownDomainNotAService", [](json& d) { ingress(d)["domain_routing"] = {{"unknown_domain", "waf-z"}}; },
     "ingresses[0].domain_routing.unknown_domain", "\"waf-z\" is not \"reject\" or a service of this ingress (services: waf-a)"},
    {"UnknownDomainServiceOfAnotherIngress",
     [](json& d) {
       add_ingress(d);
       ingress(d)["domain_routing"] = {{"unknown_domain", "proxy"}};
     },
     "ingresses[0].domain_routing.unknown_domain", "is not \"reject\" or a service of this ingress"},
    {"ProxyProtocolType", [](json& d) { ingress(d)["domain_routing"] = {{"proxy_protocol", "yes"}}; },
     "ingresses[0].domain_routing.proxy_protocol", "expected true or false, got \"yes\""},
    {"MaxConnectionsZero", [](json& d) { ingress(d)["domain_routing"] = {{"max_connections", 0}}; },
     "ingresses[0].domain_routing.max_connections", "0 is out of range (1-1000000)"},
    {"MaxFirstBytesTooSmall", [](json& d) { ingress(d)["domain_routing"] = {{"max_first_bytes", 100}}; },
     "ingresses[0].domain_routing.max_first_bytes", "100 is out of range (512-65536)"},
    {"FirstBytesTimeoutType", [](json& d) { ingress(d)["domain_routing"] = {{"first_bytes_timeout_ms", "5s"}}; },
     "ingresses[0].domain_routing.first_bytes_timeout_ms", "expected an integer, got \"5s\""},
    {"ConnectTimeoutZero", [](json& d) { ingress(d)["domain_routing"] = {{"connect_timeout_ms", 0}}; },
     "ingresses[0].domain_routing.connect_timeout_ms", "0 is out of range (1-3600000)"},
    {"IdleTimeoutTooLong", [](json& d) { ingress(d)["domain_routing"] = {{"idle_timeout_ms", 86400001}}; },
     "ingresses[0].domain_routing.idle_timeout_ms", "86400001 is out of range (1-86400000)"},
    {"MultiServiceNeedsRoutingPorts",
     [](json& d) {
       add_service(d);
       ingress(d).erase("domain_routing");
     },
     "ingresses[0].domain_routing", "the ingress has 2 services, so it routes by domain"},
    {"MultiServiceEmptyRouting",
     [](json& d) {
       add_service(d);
       ingress(d)["domain_routing"] = {{"unknown_domain", "reject"}};
     },
     "ingresses[0].domain_routing", "list at least one of tls_ports, http_ports, dns_ports"},
};

const Case kService[] = {
    {"ServicesMissing", [](json& d) { ingress(d).erase("services"); }, "ingresses[0].services", "required key is missing"},
    {"ServicesEmpty", [](json& d) { ingress(d)["services"] = json::array(); }, "ingresses[0].services", "must not be empty"},
    {"NameMissing", [](json& d) { service(d).erase("name"); }, "ingresses[0].services[0].name", "required key is missing"},
    {"NameInvalid", [](json& d) { service(d)["name"] = "waf a"; }, "ingresses[0].services[0].name",
     "\"waf a\" is not a valid service name"},
    {"NameReserved", [](json& d) { service(d)["name"] = "reject"; }, "ingresses[0].services[0].name", "\"reject\" is reserved"},
    {"NameDuplicateInIngress",
     [](json& d) {
       add_service(d);
       service(d, 1)["name"] = "waf-a";
     },
     "ingresses[0].services[1].name", "\"waf-a\" is already used by ingresses[0].services[0].name"},
    {"NameDuplicateAcrossIngresses",
     [](json& d) {
       add_ingress(d);
       ingress(d, 1)["services"][0]["name"] = "waf-a";
     },
     "ingresses[1].services[0].name", "\"waf-a\" is already used by ingresses[0].services[0].name"},
    {"DomainsNeededWithSeveralServices",
     [](json& d) {
       add_service(d);
       service(d, 1).erase("domains");
     },
     "ingresses[0].services[1].domains", "required when an ingress has more than one service"},
    {"DomainsEmptyWithSeveralServices",
     [](json& d) {
       add_service(d);
       service(d, 0)["domains"] = json::array();
     },
     "ingresses[0].services[0].domains", "required when an ingress has more than one service"},
    {"DomainClaimedTwice",
     [](json& d) {
       add_service(d);
       service(d, 1)["domains"] = {"A.example.test"};
     },
     "ingresses[0].services[1].domains[0]", "\"a.example.test\" is already used by ingresses[0].services[0].domains[0]"},
    {"DomainEmptyLabel", [](json& d) { service(d)["domains"] = {"a..example.test"}; }, "ingresses[0].services[0].domains[0]",
     "\"a..example.test\" is not a valid domain name"},
    {"DomainLeadingDash", [](json& d) { service(d)["domains"] = {"-a.example.test"}; }, "ingresses[0].services[0].domains[0]",
     "is not a valid domain name"},
    {"DomainSpace", [](json& d) { service(d)["domains"] = {"a example.test"}; }, "ingresses[0].services[0].domains[0]",
     "is not a valid domain name"},
    {"DomainLabelTooLong", [](json& d) { service(d)["domains"] = {std::string(64, 'a') + ".test"}; },
     "ingresses[0].services[0].domains[0]", "is not a valid domain name"},
    {"DomainWildcardInside", [](json& d) { service(d)["domains"] = {"a.*.example.test"}; }, "ingresses[0].services[0].domains[0]",
     "a wildcard \"*.\" may only start the name"},
    {"DomainWildcardAlone", [](json& d) { service(d)["domains"] = {"*"}; }, "ingresses[0].services[0].domains[0]",
     "\"*\" alone is not a domain"},
    {"DomainTrailingDot", [](json& d) { service(d)["domains"] = {"a.example.test."}; }, "ingresses[0].services[0].domains[0]",
     "without the trailing dot"},
    {"DomainNotAscii", [](json& d) { service(d)["domains"] = {"b\xc3\xbc" "cher.test"}; }, "ingresses[0].services[0].domains[0]",
     "xn--"},
    {"Lb", [](json& d) { service(d)["lb"] = "random"; }, "ingresses[0].services[0].lb",
     "\"random\" is not one of maglev, round_robin, weighted, least_conn"},
    {"ClientIp", [](json& d) { service(d)["client_ip"] = "keep"; }, "ingresses[0].services[0].client_ip",
     "\"keep\" is not one of nat, preserve"},
    {"StaticNeedsReplicas", [](json& d) { service(d).erase("replicas"); }, "ingresses[0].services[0].replicas",
     "required key is missing"},
    {"StaticReplicasEmpty", [](json& d) { service(d)["replicas"] = json::array(); }, "ingresses[0].services[0].replicas",
     "must not be empty"},
    {"StaticRejectsDockerService", [](json& d) { service(d)["docker_service"] = "waf-a"; }, "ingresses[0].services[0].docker_service",
     "only used with runtime \"docker\""},
    {"DockerNeedsDockerService",
     [](json& d) {
       to_docker(d);
       service(d).erase("docker_service");
     },
     "ingresses[0].services[0].docker_service", "required key is missing"},
    {"DockerServiceEmpty",
     [](json& d) {
       to_docker(d);
       service(d)["docker_service"] = "";
     },
     "ingresses[0].services[0].docker_service", "must not be empty"},
    {"DockerRejectsReplicas",
     [](json& d) {
       to_docker(d);
       service(d)["replicas"] = {{{"address", "10.201.0.11"}}};
     },
     "ingresses[0].services[0].replicas", "only used with runtime \"static\""},
    {"DockerRejectsRemoteVteps",
     [](json& d) {
       to_docker(d);
       d["underlay"] = {{"local", "198.18.2.1"}};
       ingress(d)["overlay"]["remote_vteps"] = {"198.18.2.2"};
     },
     "ingresses[0].overlay.remote_vteps", "only used with runtime \"static\""},
};

const Case kReplica[] = {
    {"AddressMissing", [](json& d) { service(d)["replicas"][0].erase("address"); }, "ingresses[0].services[0].replicas[0].address",
     "required key is missing"},
    {"AddressInvalid", [](json& d) { service(d)["replicas"][0]["address"] = "10.201.0"; },
     "ingresses[0].services[0].replicas[0].address", "\"10.201.0\" is not an IP address"},
    {"OutsideTheOverlay", [](json& d) { service(d)["replicas"][0]["address"] = "10.202.0.11"; },
     "ingresses[0].services[0].replicas[0].address", "\"10.202.0.11\" is outside the ingress's overlay subnet 10.201.0.0/24"},
    {"TheIngressItself", [](json& d) { service(d)["replicas"][0]["address"] = "10.201.0.1"; },
     "ingresses[0].services[0].replicas[0].address", "\"10.201.0.1\" is the ingress's own overlay address"},
    {"Broadcast", [](json& d) { service(d)["replicas"][0]["address"] = "10.201.0.255"; },
     "ingresses[0].services[0].replicas[0].address", "is the network or broadcast address of 10.201.0.0/24"},
    {"V6WithoutV6Overlay", [](json& d) { service(d)["replicas"][0]["address"] = "fd00:201::11"; },
     "ingresses[0].services[0].replicas[0].address", "is IPv6 but the ingress has no IPv6 overlay (overlay.address6)"},
    {"V4WithoutV4Overlay",
     [](json& d) {
       ingress(d)["overlay"] = {{"vni", 4101}, {"address6", "fd00:201::1/64"}};
       service(d)["replicas"] = {{{"address", "fd00:201::11"}}, {{"address", "10.201.0.11"}}};
     },
     "ingresses[0].services[0].replicas[1].address", "is IPv4 but the ingress has no IPv4 overlay (overlay.address)"},
    {"V6OutsideTheOverlay",
     [](json& d) {
       ingress(d)["overlay"]["address6"] = "fd00:201::1/64";
       service(d)["replicas"][0]["address"] = "fd00:202::11";
     },
     "ingresses[0].services[0].replicas[0].address", "is outside the ingress's overlay subnet fd00:201::/64"},
    {"DuplicateInService", [](json& d) { service(d)["replicas"].push_back({{"address", "10.201.0.11"}}); },
     "ingresses[0].services[0].replicas[1].address", "\"10.201.0.11\" is already used by ingresses[0].services[0].replicas[0].address"},
    {"DuplicateAcrossServices",
     [](json& d) {
       add_service(d);
       service(d, 1)["replicas"][0]["address"] = "10.201.0.11";
     },
     "ingresses[0].services[1].replicas[0].address", "is already used by ingresses[0].services[0].replicas[0].address"},
    {"WeightTooLarge", [](json& d) { service(d)["replicas"][0]["weight"] = 1001; }, "ingresses[0].services[0].replicas[0].weight",
     "1001 is out of range (0-1000)"},
    {"WeightNegative", [](json& d) { service(d)["replicas"][0]["weight"] = -1; }, "ingresses[0].services[0].replicas[0].weight",
     "-1 is out of range (0-1000)"},
};

const Case kHealthCheck[] = {
    {"PortMissing", [](json& d) { service(d)["health_check"] = {{"type", "tcp"}}; }, "ingresses[0].services[0].health_check.port",
     "required key is missing"},
    {"PortZero", [](json& d) { service(d)["health_check"] = {{"port", 0}}; }, "ingresses[0].services[0].health_check.port",
     "0 is out of range (1-65535)"},
    {"Type", [](json& d) { service(d)["health_check"] = {{"type", "icmp"}, {"port", 80}}; },
     "ingresses[0].services[0].health_check.type", "\"icmp\" is not one of tcp, http, udp, dns"},
    {"TimeoutNotBelowInterval",
     [](json& d) { service(d)["health_check"] = {{"port", 80}, {"interval_ms", 1000}, {"timeout_ms", 1000}}; },
     "ingresses[0].services[0].health_check.timeout_ms", "1000 must be less than interval_ms (1000)"},
    {"DefaultTimeoutNotBelowInterval", [](json& d) { service(d)["health_check"] = {{"port", 80}, {"interval_ms", 300}}; },
     "ingresses[0].services[0].health_check.timeout_ms", "500 (the default) must be less than interval_ms (300)"},
    {"IntervalZero", [](json& d) { service(d)["health_check"] = {{"port", 80}, {"interval_ms", 0}}; },
     "ingresses[0].services[0].health_check.interval_ms", "0 is out of range"},
    {"FallZero", [](json& d) { service(d)["health_check"] = {{"port", 80}, {"fall", 0}}; },
     "ingresses[0].services[0].health_check.fall", "0 is out of range (1-1000)"},
    {"RiseZero", [](json& d) { service(d)["health_check"] = {{"port", 80}, {"rise", 0}}; },
     "ingresses[0].services[0].health_check.rise", "0 is out of range (1-1000)"},
    {"HttpStatus", [](json& d) { service(d)["health_check"] = {{"type", "http"}, {"port", 80}, {"http_expect_status", 600}}; },
     "ingresses[0].services[0].health_check.http_expect_status", "600 is out of range (100-599)"},
    {"HttpPath", [](json& d) { service(d)["health_check"] = {{"type", "http"}, {"port", 80}, {"http_path", "healthz"}}; },
     "ingresses[0].services[0].health_check.http_path", "\"healthz\" is not a request path"},
    {"HttpFieldWithTcp", [](json& d) { service(d)["health_check"] = {{"type", "tcp"}, {"port", 80}, {"http_path", "/"}}; },
     "ingresses[0].services[0].health_check.http_path", "only used with type \"http\""},
};

// A value that cannot be read is reported once: checks that depend on it are skipped.
const Case kNoKnockOn[] = {
    {"BadOverlayAddressDoesNotFailReplicas", [](json& d) { ingress(d)["overlay"]["address"] = "10.201.0.1/99"; },
     "ingresses[0].overlay.address", "is not an address with a prefix length"},
    {"BadRuntimeDoesNotFailReplicas",
     [](json& d) {
       d["runtime"] = "podman";
       service(d)["docker_service"] = "waf-a";
     },
     "runtime", "is not one of static, docker"},
    {"BadUnderlayDoesNotFailRemoteVteps",
     [](json& d) {
       d["underlay"] = {{"local", "127.0.0.1"}};
       ingress(d)["overlay"]["remote_vteps"] = {"198.18.2.2"};
     },
     "underlay.local", "is a loopback address"},
    {"BadServiceNameDoesNotFailUnknownDomain",
     [](json& d) {
       add_service(d);
       service(d, 1)["name"] = 7;
       ingress(d)["domain_routing"]["unknown_domain"] = "waf-b";
     },
     "ingresses[0].services[1].name", "expected a string, got 7"},
    {"BadPortListDoesNotFailDomainRouting",
     [](json& d) {
       add_service(d);
       ingress(d)["domain_routing"] = {{"tls_ports", {"https"}}};
     },
     "ingresses[0].domain_routing.tls_ports[0]", "is not a port range"},
    {"BadHealthCheckTypeDoesNotFailHttpFields",
     [](json& d) { service(d)["health_check"] = {{"type", "htp"}, {"port", 80}, {"http_path", "/x"}}; },
     "ingresses[0].services[0].health_check.type", "\"htp\" is not one of"},
    {"DuplicateVniStillChecksNothingElse",
     [](json& d) {
       add_ingress(d);
       ingress(d, 1)["overlay"]["vni"] = 4101;
     },
     "ingresses[1].overlay.vni", "already used"},
};

const Case kUnknownKeys[] = {
    {"TopLevelWithSuggestion", [](json& d) { d["interface"] = json::array(); }, "interface",
     "unknown key (did you mean \"interfaces\"?)"},
    {"InspectWithSuggestion", [](json& d) { ingress(d)["inspect"] = {{"alow", json::array()}}; }, "ingresses[0].inspect.alow",
     "unknown key (did you mean \"allow\"?)"},
    {"ReplicaWithSuggestion", [](json& d) { service(d)["replicas"][0]["wieght"] = 2; }, "ingresses[0].services[0].replicas[0].wieght",
     "unknown key (did you mean \"weight\"?)"},
    {"HealthCheckWithSuggestion", [](json& d) { service(d)["health_check"] = {{"port", 80}, {"interval", 1000}}; },
     "ingresses[0].services[0].health_check.interval", "unknown key (did you mean \"interval_ms\"?)"},
    {"NothingClose", [](json& d) { ingress(d)["colour"] = "blue"; }, "ingresses[0].colour", "unknown key"},
};

std::string case_name(const testing::TestParamInfo<Case>& info) { return info.param.name; }

INSTANTIATE_TEST_SUITE_P(TopLevel, ConfigRule, testing::ValuesIn(kTopLevel), case_name);
INSTANTIATE_TEST_SUITE_P(Ingress, ConfigRule, testing::ValuesIn(kIngress), case_name);
INSTANTIATE_TEST_SUITE_P(Overlay, ConfigRule, testing::ValuesIn(kOverlay), case_name);
INSTANTIATE_TEST_SUITE_P(Inspect, ConfigRule, testing::ValuesIn(kInspect), case_name);
INSTANTIATE_TEST_SUITE_P(DomainRouting, ConfigRule, testing::ValuesIn(kDomainRouting), case_name);
INSTANTIATE_TEST_SUITE_P(Service, ConfigRule, testing::ValuesIn(kService), case_name);
INSTANTIATE_TEST_SUITE_P(Replica, ConfigRule, testing::ValuesIn(kReplica), case_name);
INSTANTIATE_TEST_SUITE_P(HealthCheck, ConfigRule, testing::ValuesIn(kHealthCheck), case_name);
INSTANTIATE_TEST_SUITE_P(NoKnockOn, ConfigRule, testing::ValuesIn(kNoKnockOn), case_name);
INSTANTIATE_TEST_SUITE_P(UnknownKey, ConfigRule, testing::ValuesIn(kUnknownKeys), case_name);

// ------------------------------------------------------------------------------------------------
// The BPF maps' fixed sizes: a config that would overflow one is refused whole.

// COUNT ingresses with IPS_EACH IPv6 service IPs each, all else distinct.
json many(std::size_t count, std::size_t ips_each) {
  json document = minimal();
  document["ingresses"] = json::array();
  for (std::size_t k = 0; k < count; ++k) {
    json ips = json::array();
    for (std::size_t i = 0; i < ips_each; ++i) ips.push_back("fd00:18::" + std::to_string(k) + ":" + std::to_string(i + 1));
    const std::string subnet = "10." + std::to_string(k >> 8) + "." + std::to_string(k & 255) + ".";
    document["ingresses"].push_back({{"name", "i" + std::to_string(k)},
                                     {"service_ips", ips},
                                     {"overlay", {{"vni", 5000 + k}, {"address", subnet + "1/24"}}},
                                     {"services", {{{"name", "s" + std::to_string(k)}, {"replicas", {{{"address", subnet + "11"}}}}}}}});
  }
  return document;
}

TEST(ConfigCapacity, AtTheLimitsIsValid) {
  EXPECT_TRUE(parse_json(many(1, 256)).config);
  EXPECT_TRUE(parse_json(many(16, 256)).config);   // 4096 service IPs
  EXPECT_TRUE(parse_json(many(1024, 1)).config);   // 1024 ingresses
}

TEST(ConfigCapacity, TooManyServiceIpsInOneIngress) {
  const auto result = parse_json(many(1, 257));
  ASSERT_EQ(result.errors.size(), 1u) << all(result.errors);
  EXPECT_EQ(to_string(result.errors[0]), "ingresses[0].service_ips: has 257 addresses; an ingress takes at most 256 "
                                         "(the entries of its inspector's local_service_ips map)");
}

TEST(ConfigCapacity, TooManyServiceIpsInAll) {
  const auto result = parse_json(many(17, 241)); // 4097, none over an ingress's own limit
  ASSERT_EQ(result.errors.size(), 1u) << all(result.errors);
  EXPECT_EQ(to_string(result.errors[0]),
            "ingresses: have 4097 service IPs in all; the host XDP program's services map takes at most 4096");
}

TEST(ConfigCapacity, TooManyIngresses) {
  const auto result = parse_json(many(1025, 1));
  ASSERT_EQ(result.errors.size(), 1u) << all(result.errors);
  EXPECT_EQ(to_string(result.errors[0]),
            "ingresses: has 1025 ingresses; the host XDP program's ingress_devs map takes at most 1024");
}

// ------------------------------------------------------------------------------------------------
// Reporting.

TEST(ConfigErrors, ToStringJoinsPathAndMessage) {
  EXPECT_EQ(to_string(Error{"ingresses[1].service_ips[0]", "\"198.18.0.300\" is not an IP address"}),
            "ingresses[1].service_ips[0]: \"198.18.0.300\" is not an IP address");
  EXPECT_EQ(to_string(Error{"", "invalid JSON at line 1, column 1: x"}), "invalid JSON at line 1, column 1: x");
}

TEST(ConfigErrors, TheIssueExample) {
  json document = minimal();
  add_ingress(document);
  ingress(document, 1)["service_ips"][0] = "198.18.0.300";
  const auto result = parse_json(document);
  ASSERT_EQ(result.errors.size(), 1u) << all(result.errors);
  EXPECT_EQ(to_string(result.errors[0]), "ingresses[1].service_ips[0]: \"198.18.0.300\" is not an IP address");
}

TEST(ConfigErrors, EveryErrorIsReportedInOneRun) {
  json document = minimal();
  add_ingress(document);
  document["runtime"] = "podman";
  document["interfaces"][0]["xdp_mode"] = "fast";
  ingress(document)["service_ips"] = {"198.18.0.300", "224.0.0.1"};
  ingress(document)["inspect"] = {{"alow", json::array()}, {"fragments", "keep"}};
  service(document)["replicas"][0]["weight"] = 5000;
  ingress(document, 1)["overlay"]["vni"] = 4101;
  ingress(document, 1)["services"][0]["health_check"] = {{"port", 0}};

  const auto result = parse_json(document);
  EXPECT_FALSE(result.config);
  EXPECT_EQ(result.errors.size(), 9u) << all(result.errors);
  EXPECT_TRUE(has_error(result, "interfaces[0].xdp_mode", "\"fast\"")) << all(result.errors);
  EXPECT_TRUE(has_error(result, "runtime", "\"podman\"")) << all(result.errors);
  EXPECT_TRUE(has_error(result, "ingresses[0].service_ips[0]", "is not an IP address")) << all(result.errors);
  EXPECT_TRUE(has_error(result, "ingresses[0].service_ips[1]", "is a multicast address")) << all(result.errors);
  EXPECT_TRUE(has_error(result, "ingresses[0].inspect.alow", "unknown key")) << all(result.errors);
  EXPECT_TRUE(has_error(result, "ingresses[0].inspect.fragments", "\"keep\"")) << all(result.errors);
  EXPECT_TRUE(has_error(result, "ingresses[0].services[0].replicas[0].weight", "5000")) << all(result.errors);
  EXPECT_TRUE(has_error(result, "ingresses[1].overlay.vni", "already used")) << all(result.errors);
  EXPECT_TRUE(has_error(result, "ingresses[1].services[0].health_check.port", "out of range")) << all(result.errors);
}

TEST(ConfigErrors, DuplicateKeysAreReportedWithTheirPath) {
  const auto result = parse(R"({
    "interfaces": [ { "name": "eth0" } ],
    "ingresses": [ {
      "name": "waf",
      "service_ips": [ "198.18.0.10" ],
      "service_ips": [ "198.18.0.11" ],
      "overlay": { "vni": 4101, "address": "10.201.0.1/24" },
      "services": [ { "name": "waf-a", "replicas": [ { "address": "10.201.0.11", "address": "10.201.0.12" } ] } ]
    } ]
  })");
  ASSERT_EQ(result.errors.size(), 2u) << all(result.errors);
  EXPECT_EQ(to_string(result.errors[0]), "ingresses[0].service_ips: duplicate key");
  EXPECT_EQ(to_string(result.errors[1]), "ingresses[0].services[0].replicas[0].address: duplicate key");
}

TEST(ConfigErrors, SyntaxErrorGivesLineAndColumn) {
  const auto result = parse("{\n  \"interfaces\": [ { \"name\": \"eth0\" } ],\n  \"runtime\": static\n}\n");
  ASSERT_EQ(result.errors.size(), 1u) << all(result.errors);
  EXPECT_EQ(result.errors[0].path, "");
  EXPECT_NE(result.errors[0].message.find("invalid JSON at line 3, column"), std::string::npos) << result.errors[0].message;
  EXPECT_FALSE(result.config);
}

TEST(ConfigErrors, TruncatedDocument) {
  const auto result = parse("{ \"interfaces\": [");
  ASSERT_EQ(result.errors.size(), 1u) << all(result.errors);
  EXPECT_NE(result.errors[0].message.find("invalid JSON at line 1"), std::string::npos) << result.errors[0].message;
}

TEST(ConfigErrors, EmptyDocument) {
  const auto result = parse("");
  ASSERT_EQ(result.errors.size(), 1u);
  EXPECT_NE(result.errors[0].message.find("invalid JSON"), std::string::npos) << result.errors[0].message;
}

TEST(ConfigErrors, NumberTooLargeIsAnErrorNotAnException) {
  const auto result = parse("{ \"interfaces\": 1e999 }");
  ASSERT_EQ(result.errors.size(), 1u) << all(result.errors);
  EXPECT_NE(result.errors[0].message.find("invalid JSON"), std::string::npos) << result.errors[0].message;
}

TEST(ConfigErrors, MissingFileNamesTheFileAndTheReason) {
  const std::filesystem::path file = "/nonexistent/xdpfwd/services.json";
  const auto result = load_file(file);
  ASSERT_EQ(result.errors.size(), 1u);
  EXPECT_EQ(to_string(result.errors[0]), "cannot read \"/nonexistent/xdpfwd/services.json\": No such file or directory");
  EXPECT_FALSE(result.config);
}

TEST(ConfigErrors, DirectoryIsNotAFile) {
  const auto result = load_file(kConfigDir);
  ASSERT_EQ(result.errors.size(), 1u);
  EXPECT_NE(result.errors[0].message.find("Is a directory"), std::string::npos) << result.errors[0].message;
}

TEST(ConfigErrors, LoadFileReportsValidationErrorsToo) {
  const std::filesystem::path file =
      std::filesystem::temp_directory_path() / ("xdpfwd-config-test-" + std::to_string(::getpid()) + ".json");
  json document = minimal();
  document["runtime"] = "podman";
  std::ofstream(file) << document.dump(2);
  const auto result = load_file(file);
  std::filesystem::remove(file);
  ASSERT_EQ(result.errors.size(), 1u) << all(result.errors);
  EXPECT_EQ(result.errors[0].path, "runtime");
}

} // namespace
} // namespace xdpfwd::config
