// xdpfwdctl: asks the running daemon over its control socket.
//   xdpfwdctl [--socket PATH] status [--json]
//   xdpfwdctl [--socket PATH] reload    validate the config file and apply what changed; exit 1
//                                       with the errors when it is rejected (nothing changes then)
//   xdpfwdctl [--socket PATH] drain|undrain INGRESS SERVICE REPLICA
//                                       the replica takes no new flows (its established flows go on)
//                                       until undrained, whatever the config file says
//   xdpfwdctl [--socket PATH] prepare-restart
//                                       the daemon's next stop leaves the XDP path, the ingresses
//                                       and their inspectors running, for the next daemon to adopt
//                                       (under systemd, `systemctl restart` does this by itself)
#include "xdpfwd/control_client.hpp"

#include <algorithm>
#include <chrono>
#include <iostream>
#include <string>
#include <vector>

namespace {

using nlohmann::json;
constexpr const char* kDefaultSocket = "/run/xdpfwd/control.sock";

// Columns padded to their widest cell, like `ip -br` or `ss`.
class Table {
public:
  explicit Table(std::vector<std::string> header) { rows_.push_back(std::move(header)); }
  void add(std::vector<std::string> row) { rows_.push_back(std::move(row)); }
  void print(std::ostream& out) const {
    std::vector<size_t> widths(rows_.front().size(), 0);
    for (const auto& row : rows_)
      for (size_t i = 0; i < row.size(); ++i) widths[i] = std::max(widths[i], row[i].size());
    for (const auto& row : rows_) {
      for (size_t i = 0; i < row.size(); ++i)
        out << row[i] << (i + 1 < row.size() ? std::string(widths[i] - row[i].size() + 2, ' ') : "");
      out << '\n';
    }
  }

private:
  std::vector<std::vector<std::string>> rows_;
};

std::string text(const json& value) { return value.is_string() ? value.get<std::string>() : value.dump(); }

void print_status(const json& status, std::ostream& out) {
  Table service_ips({"INGRESS", "SERVICE IP", "PACKETS", "BYTES", "REDIRECT_ERRORS", "MALFORMED"});
  Table services({"INGRESS", "SERVICE", "LB", "CLIENT_IP", "FLOWS", "REPLICAS"});
  Table replicas({"INGRESS", "SERVICE", "REPLICA", "WEIGHT", "HEALTHY", "RESOLVED", "FLOWS"});
  Table drops({"INGRESS", "REASON", "PACKETS"});
  for (const auto& ingress : status.at("ingresses")) {
    const std::string name = ingress.at("name");
    for (const auto& ip : ingress.at("service_ips"))
      service_ips.add({name, ip.at("address"), text(ip.at("packets")), text(ip.at("bytes")),
                       text(ip.at("redirect_errors")), text(ip.at("malformed"))});
    if (const auto refused = ingress.value("redirect_not_delivered", 0); refused > 0)
      drops.add({name, "redirect_not_delivered (host XDP -> ingress veth)", std::to_string(refused)});
    const json& inspector = ingress.at("inspector");
    if (inspector.contains("error")) {
      drops.add({name, "inspector unavailable: " + text(inspector.at("error")), ""});
      continue;
    }
    for (const auto& service : inspector.at("services")) {
      services.add({name, service.at("name"), service.at("lb"), service.at("client_ip"), text(service.at("flows")),
                    std::to_string(service.at("replicas").size())});
      for (const auto& replica : service.at("replicas"))
        replicas.add({name, service.at("name"), replica.at("address"), text(replica.at("weight")),
                      replica.at("healthy").get<bool>() ? "yes" : "no", replica.at("resolved").get<bool>() ? "yes" : "no",
                      text(replica.at("active_flows"))});
    }
    for (const auto& [reason, count] : inspector.at("drops").items()) drops.add({name, reason, text(count)});
  }
  service_ips.print(out);
  out << '\n';
  services.print(out);
  out << '\n';
  replicas.print(out);
  out << '\n';
  drops.print(out);
}

int usage(std::ostream& out, int code) {
  out << "usage: xdpfwdctl [--socket PATH] status [--json] | reload | prepare-restart |\n"
         "                 drain|undrain INGRESS SERVICE REPLICA\n"
         "  --socket PATH  the daemon's control socket (default " << kDefaultSocket << ")\n";
  return code;
}

} // namespace

int main(int argc, char** argv) {
  std::string socket = kDefaultSocket;
  std::string command;
  std::vector<std::string> operands;
  bool as_json = false;
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    if (arg == "--socket" && i + 1 < argc) socket = argv[++i];
    else if (arg == "--json") as_json = true;
    else if (arg == "--help" || arg == "-h") return usage(std::cout, 0);
    else if (command.empty() && arg[0] != '-') command = arg;
    else if (!command.empty() && arg[0] != '-') operands.push_back(arg);
    else return usage(std::cerr, 2);
  }
  const bool drain = command == "drain" || command == "undrain";
  if (drain ? operands.size() != 3 : !operands.empty()) return usage(std::cerr, 2);
  if (command != "status" && command != "reload" && command != "prepare-restart" && !drain) return usage(std::cerr, 2);
  json request = {{"op", command}};
  if (drain) request.update({{"ingress", operands[0]}, {"service", operands[1]}, {"replica", operands[2]}});
  try {
    // A reload may start inspectors and build namespaces: it gets longer than a status.
    const json answer = xdpfwd::control_request(socket, request, std::chrono::seconds(command == "reload" ? 60 : 10));
    if (command == "reload") {
      for (const auto& change : answer.value("changes", json::array())) std::cout << text(change) << "\n";
      for (const auto& error : answer.value("errors", json::array())) std::cerr << "xdpfwdctl: " << text(error) << "\n";
      std::cout << "generation " << answer.value("generation", 0) << (answer.value("ok", false) ? "" : " (reload rejected)") << "\n";
      return answer.value("ok", false) ? 0 : 1;
    }
    if (!answer.value("ok", false)) {
      std::cerr << "xdpfwdctl: " << answer.value("error", std::string("the daemon refused")) << "\n";
      return 1;
    }
    if (drain) {
      std::cout << "replica " << operands[2] << " of " << operands[1] << " " << command << "ed\n";
      return 0;
    }
    if (command == "prepare-restart") {
      std::cout << "the next stop of xdpfwd keeps forwarding for the next start\n";
      return 0;
    }
    if (as_json) std::cout << answer.at("status").dump(2) << "\n";
    else print_status(answer.at("status"), std::cout);
    return 0;
  } catch (const std::exception& error) {
    std::cerr << "xdpfwdctl: " << error.what() << "\n";
    return 1;
  }
}
