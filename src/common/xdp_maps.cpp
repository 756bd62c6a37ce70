#include "xdpfwd/xdp_maps.hpp"

#include "xdpfwd/system_error.hpp"

#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include <cstring>
#include <vector>

namespace xdpfwd {
namespace {

// Per-CPU map values are read as one array of libbpf_num_possible_cpus() elements.
template <typename Value>
std::vector<Value> read_per_cpu(int map_fd, std::uint32_t key, const char* map_name) {
  const int cpus = libbpf_num_possible_cpus();
  check_libbpf(cpus, "count possible CPUs");
  std::vector<Value> values(static_cast<size_t>(cpus));
  if (bpf_map_lookup_elem(map_fd, &key, values.data()) < 0)
    throw_errno(std::string("read ") + map_name + "[" + std::to_string(key) + "]");
  return values;
}

} // namespace

xdpfwd_service_key service_key(const boost::asio::ip::address& address) {
  xdpfwd_service_key key{};
  const auto v6 = address.is_v4() ? boost::asio::ip::make_address_v6(boost::asio::ip::v4_mapped, address.to_v4())
                                  : address.to_v6();
  const auto bytes = v6.to_bytes();
  std::memcpy(key.addr, bytes.data(), sizeof(key.addr));
  return key;
}

ServiceCounters read_service_counters(int service_stats_fd, std::uint32_t stats_index) {
  ServiceCounters sum;
  for (const auto& cpu : read_per_cpu<xdpfwd_service_stats>(service_stats_fd, stats_index, "service_stats")) {
    sum.packets += cpu.packets;
    sum.bytes += cpu.bytes;
    sum.redirect_errors += cpu.redirect_errors;
    sum.malformed += cpu.malformed;
  }
  return sum;
}

MalformedCounters read_malformed_counters(int malformed_fd) {
  MalformedCounters counters{};
  for (std::uint32_t reason = 0; reason < counters.size(); ++reason)
    for (const auto value : read_per_cpu<std::uint64_t>(malformed_fd, reason, "malformed"))
      counters[reason] += value;
  return counters;
}

std::string_view malformed_reason_name(int reason) {
  switch (reason) {
  case XDPFWD_MALFORMED_L2_TRUNCATED: return "l2_truncated";
  case XDPFWD_MALFORMED_VLAN_TOO_DEEP: return "vlan_too_deep";
  case XDPFWD_MALFORMED_L3_TRUNCATED: return "l3_truncated";
  case XDPFWD_MALFORMED_IPV4_HEADER: return "ipv4_header";
  case XDPFWD_MALFORMED_IPV4_LENGTH: return "ipv4_length";
  case XDPFWD_MALFORMED_IPV6_LENGTH: return "ipv6_length";
  case XDPFWD_MALFORMED_IPV6_HEADER: return "ipv6_header";
  default: return "unknown";
  }
}

} // namespace xdpfwd
