#include "counters.hpp"

#include "xdpfwd/system_error.hpp"
#include "xdpfwd/unique_fd.hpp"

#include <bpf/bpf.h>

#include <sstream>

namespace xdpfwd {
namespace {

UniqueFd open_pin(const config::Config& config, std::string_view map) {
  const std::string path = config.pin_dir + "/" + std::string(map);
  UniqueFd fd(bpf_obj_get(path.c_str()));
  if (!fd) throw_errno("open pinned map " + path + " (is xdpfwd running with this config?)");
  return fd;
}

Counters collect_counters(const config::Config& config, int services_fd, int service_stats_fd, int malformed_fd) {
  Counters result;
  for (const auto& ingress : config.ingresses) {
    for (const auto& address : ingress.service_ips) {
      const auto key = service_key(address);
      xdpfwd_service_value value{};
      if (bpf_map_lookup_elem(services_fd, &key, &value) < 0)
        throw_errno("look up service IP " + address.to_string() + " in the services map");
      result.services.push_back({ingress.name, address, read_service_counters(service_stats_fd, value.stats_index)});
    }
  }
  result.malformed = read_malformed_counters(malformed_fd);
  return result;
}

} // namespace

Counters read_pinned_counters(const config::Config& config) {
  const UniqueFd services = open_pin(config, kServicesMap);
  const UniqueFd stats = open_pin(config, kServiceStatsMap);
  const UniqueFd malformed = open_pin(config, kMalformedMap);
  return collect_counters(config, services.get(), stats.get(), malformed.get());
}

std::string format_counters(const Counters& counters) {
  std::ostringstream out;
  for (const auto& service : counters.services)
    out << service.ingress << ' ' << service.address.to_string() << " packets=" << service.counters.packets
        << " bytes=" << service.counters.bytes << " redirect_errors=" << service.counters.redirect_errors
        << " malformed=" << service.counters.malformed << '\n';
  for (int reason = 0; reason < XDPFWD_MALFORMED_REASONS; ++reason)
    if (counters.malformed[reason] != 0)
      out << "malformed " << malformed_reason_name(reason) << '=' << counters.malformed[reason] << '\n';
  return out.str();
}

} // namespace xdpfwd
