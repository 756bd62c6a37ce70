#include "metrics.hpp"

#include <map>
#include <sstream>
#include <vector>

namespace xdpfwd {
namespace {

using nlohmann::json;
using Labels = std::vector<std::pair<std::string, std::string>>;

// Label values escape backslash, double quote and newline.
std::string escape(const std::string& value) {
  std::string out;
  for (char c : value) {
    if (c == '\\' || c == '"') out += '\\';
    if (c == '\n') {
      out += "\\n";
      continue;
    }
    out += c;
  }
  return out;
}

// Collects samples per metric family, so that each family is written once with its HELP/TYPE.
class Exposition {
public:
  void add(const std::string& name, const char* type, const char* help, const Labels& labels, const json& value) {
    Family& family = families_[name];
    family.type = type;
    family.help = help;
    std::ostringstream sample;
    sample << name;
    if (!labels.empty()) {
      sample << '{';
      for (size_t i = 0; i < labels.size(); ++i)
        sample << (i ? "," : "") << labels[i].first << "=\"" << escape(labels[i].second) << '"';
      sample << '}';
    }
    sample << ' ' << (value.is_boolean() ? (value.get<bool>() ? "1" : "0") : value.dump());
    family.samples.push_back(sample.str());
  }

  std::string text() const {
    std::ostringstream out;
    for (const auto& [name, family] : families_) {
      out << "# HELP " << name << ' ' << family.help << "\n# TYPE " << name << ' ' << family.type << '\n';
      for (const auto& sample : family.samples) out << sample << '\n';
    }
    return out.str();
  }

private:
  struct Family {
    std::string type, help;
    std::vector<std::string> samples;
  };
  std::map<std::string, Family> families_;
};

} // namespace

std::string prometheus_text(const json& status, std::uint64_t reloads_applied, std::uint64_t reloads_rejected) {
  Exposition metrics;
  metrics.add("xdpfwd_config_generation", "gauge", "Generation of the configuration in force.", {},
              status.value("generation", 0));
  metrics.add("xdpfwd_reloads_total", "counter", "Reloads by result.", {{"result", "applied"}}, reloads_applied);
  metrics.add("xdpfwd_reloads_total", "counter", "Reloads by result.", {{"result", "rejected"}}, reloads_rejected);
  // json::value() returns a copy: keep it alive while iterating (a range-for extends only the
  // outermost temporary, not one that .items() refers to).
  const json malformed = status.value("malformed", json::object());
  for (const auto& [reason, count] : malformed.items())
    metrics.add("xdpfwd_xdp_malformed_frames_total", "counter", "Frames the host XDP program found malformed.",
                {{"reason", reason}}, count);
  const json ingresses = status.value("ingresses", json::array());
  for (const auto& ingress : ingresses) {
    const std::string name = ingress.value("name", "");
    const json service_ips = ingress.value("service_ips", json::array());
    for (const auto& ip : service_ips) {
      const Labels labels{{"ingress", name}, {"address", ip.value("address", "")}};
      metrics.add("xdpfwd_xdp_packets_total", "counter", "Frames redirected to the ingress by the host XDP program.",
                  labels, ip.value("packets", 0));
      metrics.add("xdpfwd_xdp_bytes_total", "counter", "Bytes of the frames redirected to the ingress.", labels,
                  ip.value("bytes", 0));
      metrics.add("xdpfwd_xdp_redirect_errors_total", "counter", "Frames to a service IP that could not be redirected.",
                  labels, ip.value("redirect_errors", 0));
      metrics.add("xdpfwd_xdp_service_malformed_total", "counter", "Malformed frames to a service IP, dropped.", labels,
                  ip.value("malformed", 0));
    }
    metrics.add("xdpfwd_xdp_redirect_not_delivered_total", "counter",
                "Frames redirected to the ingress that its veth refused (no XDP program on its peer, or down).",
                {{"ingress", name}}, ingress.value("redirect_not_delivered", 0));
    const json inspector = ingress.value("inspector", json::object());
    const bool up = !inspector.contains("error");
    metrics.add("xdpfwd_inspector_up", "gauge", "Whether the ingress's inspector answered.", {{"ingress", name}}, up);
    if (!up) continue;
    metrics.add("xdpfwd_inspector_accepted_packets_total", "counter", "Client packets that passed the conformity check.",
                {{"ingress", name}}, inspector.value("accepted", 0));
    for (const char* direction : {"to_overlay", "to_client"})
      metrics.add("xdpfwd_inspector_forwarded_packets_total", "counter", "Packets the inspector sent, by direction.",
                  {{"ingress", name}, {"direction", direction}}, inspector.value(direction, 0));
    metrics.add("xdpfwd_inspector_xdp_programs_restored_total", "counter",
                "The inspector's XDP programs found removed (by hand) and put back.", {{"ingress", name}},
                inspector.value("xdp_programs_restored", 0));
    if (const json limit = inspector.value("rate_limit", json()); limit.is_object()) {
      metrics.add("xdpfwd_inspector_rate_limit_sources", "gauge", "Sources in the rate limiter's bounded table.",
                  {{"ingress", name}}, limit.value("sources", 0));
      metrics.add("xdpfwd_inspector_rate_limit_evicted_active_total", "counter",
                  "Sources forgotten while their bucket was refilling (the table under pressure).", {{"ingress", name}},
                  limit.value("evicted_active", 0));
    }
    const json drops = inspector.value("drops", json::object());
    for (const auto& [reason, count] : drops.items())
      metrics.add("xdpfwd_inspector_drops_total", "counter", "Packets the inspector dropped, by reason.",
                  {{"ingress", name}, {"reason", reason}}, count);
    const json services = inspector.value("services", json::array());
    for (const auto& service : services) {
      const std::string service_name = service.value("name", "");
      const Labels labels{{"ingress", name}, {"service", service_name}};
      metrics.add("xdpfwd_service_flows", "gauge", "Flows in the service's flow table.", labels, service.value("flows", 0));
      metrics.add("xdpfwd_service_flows_created_total", "counter", "Flows created.", labels,
                  service.value("flows_created", 0));
      metrics.add("xdpfwd_service_flows_moved_total", "counter", "Flows moved to another replica.", labels,
                  service.value("flows_moved", 0));
      metrics.add("xdpfwd_service_flows_evicted_total", "counter",
                  "Flows removed before their time: the table full, or their NAT port taken back.", labels,
                  service.value("flows_evicted", 0));
      const json replicas = service.value("replicas", json::array());
      for (const auto& replica : replicas) {
        const Labels replica_labels{{"ingress", name}, {"service", service_name}, {"replica", replica.value("address", "")}};
        metrics.add("xdpfwd_replica_up", "gauge", "Whether the replica takes new flows (healthy).", replica_labels,
                    replica.value("healthy", false));
        metrics.add("xdpfwd_replica_weight", "gauge", "The replica's weight (0: drained).", replica_labels,
                    replica.value("weight", 0));
        metrics.add("xdpfwd_replica_active_flows", "gauge", "Flows on the replica.", replica_labels,
                    replica.value("active_flows", 0));
      }
    }
  }
  return metrics.text();
}

} // namespace xdpfwd
