#include "forwarding.hpp"

#include "bytes.hpp"
#include "checksum.hpp"
#include "dns_query.hpp"
#include "icmp_too_big.hpp"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <cstring>
#include <random>

namespace xdpfwd::ingress {
namespace {

namespace pkt = packet;
using balance::Address;
using balance::FlowKey;

// Expired flows removed per call of expire(): keeps the sweep from stalling the data path.
constexpr std::size_t kExpireBudget = 256;

Address to_flow_address(const pkt::IpAddr& ip) {
  if (ip.version == 4) {
    Address mapped{};
    mapped[10] = mapped[11] = 0xff;
    std::memcpy(&mapped[12], ip.bytes.data(), 4);
    return mapped;
  }
  return ip.bytes;
}

pkt::IpAddr to_ip_addr(const Address& address) {
  if (balance::is_v4_mapped(address)) return pkt::IpAddr::from_bytes(4, &address[12]);
  return pkt::IpAddr::from_bytes(6, address.data());
}

// The flow key of a client packet or a replica's answer, as the balancer expects it: ICMP echo
// requests carry their id as the source port, replies as the destination port.
FlowKey flow_key(const pkt::PacketView& view) {
  FlowKey key{};
  key.src = to_flow_address(view.source());
  key.dst = to_flow_address(view.destination());
  key.proto = static_cast<balance::IpProto>(view.l4_proto);
  if (view.is_icmp()) {
    const bool request = view.icmp_type == (view.ip_version == 4 ? 8 : 128);
    (request ? key.src_port : key.dst_port) = view.icmp_id;
  } else {
    key.src_port = view.src_port;
    key.dst_port = view.dst_port;
  }
  return key;
}

std::optional<Address> overlay_address(const std::optional<pkt::IpAddr>& ip) {
  if (!ip) return std::nullopt;
  return to_flow_address(*ip);
}

} // namespace

std::string_view to_string(ForwardDrop drop) noexcept {
  switch (drop) {
  case ForwardDrop::NotServiceIp: return "not_service_ip";
  case ForwardDrop::NoNeighbour: return "no_neighbour";
  case ForwardDrop::TooBig: return "too_big";
  case ForwardDrop::UnknownReply: return "unknown_reply";
  case ForwardDrop::BadOverlayFrame: return "bad_overlay_frame";
  case ForwardDrop::IcmpUntranslatable: return "icmp_untranslatable";
  case ForwardDrop::BadDns: return "bad_dns";
  case ForwardDrop::NoDomainPort: return "no_domain_port";
  case ForwardDrop::Count: break;
  }
  return "unknown";
}

struct Forwarding::Service {
  config::Service config;
  balance::ServiceBalancer balancer;
  std::vector<std::optional<pkt::nat::Mac>> macs; // by replica slot; refresh_neighbours()
  std::uint64_t dns_routed = 0; // DNS queries given to this service by their name
};

Forwarding::Forwarding(const config::Ingress& ingress, IngressLinks links, NeighbourCache& neighbours)
    : name_(ingress.name), links_(links), neighbours_(neighbours) {
  configure(ingress);
}

Forwarding::~Forwarding() = default;

std::uint32_t Forwarding::flows_per_service(const config::Ingress& ingress) {
  const auto services = static_cast<std::uint32_t>(std::max<std::size_t>(ingress.services.size(), 1));
  return std::max(config::kMinFlowsPerService, ingress.max_flows / services);
}

std::unique_ptr<Forwarding::Service> Forwarding::make_service(const config::Service& service,
                                                              std::uint32_t max_flows) const {
  balance::ServiceBalancerOptions options{
      .lb = service.lb,
      .client_ip = service.client_ip,
      .overlay_v4 = overlay_address(overlay_v4_),
      .overlay_v6 = overlay_address(overlay_v6_),
  };
  options.flows.capacity = max_flows;
  auto made = std::unique_ptr<Service>(new Service{service, balance::ServiceBalancer(options), {}, 0});
  made->balancer.sync(service.replicas);
  return made;
}

void Forwarding::configure(const config::Ingress& ingress) {
  // First what can throw (a config that validation let through but the table refuses), so that
  // a refused configuration changes nothing.
  std::optional<domain::DomainTable> domains;
  if (ingress.services.size() > 1) domains = domain::DomainTable::from_ingress(ingress);
  const auto old_v4 = overlay_v4_, old_v6 = overlay_v6_;
  overlay_v4_.reset();
  overlay_v6_.reset();
  if (ingress.overlay.address) overlay_v4_ = pkt::to_ip_addr(ingress.overlay.address->address());
  if (ingress.overlay.address6) overlay_v6_ = pkt::to_ip_addr(ingress.overlay.address6->address());
  // A balancer NATs to the overlay addresses it was made with: a new address needs new ones.
  const bool overlay_kept = old_v4 == overlay_v4_ && old_v6 == overlay_v6_;
  service_ips_.clear();
  for (const auto& ip : ingress.service_ips) service_ips_.push_back(pkt::to_ip_addr(ip));

  pkt::ConformityOptions options;
  options.rate_limiter.seed = std::random_device()();
  if (conformity_) {
    for (std::size_t reason = 0; reason < conformity_before_.size(); ++reason)
      conformity_before_[reason] += conformity_->counters()[reason];
    rate_limit_evicted_before_ += conformity_->rate_limiter().stats().evicted_active;
  }
  conformity_ = std::make_unique<pkt::Conformity>(ingress.inspect, options);

  // Services are kept by name; one whose balancing rule, client_ip or share of max_flows changed
  // starts afresh.
  const std::uint32_t max_flows = flows_per_service(ingress);
  std::vector<std::unique_ptr<Service>> services;
  for (const auto& wanted : ingress.services) {
    auto kept = std::find_if(services_.begin(), services_.end(),
                             [&](const auto& s) { return s && s->config.name == wanted.name; });
    if (kept != services_.end() && overlay_kept && (*kept)->config.lb == wanted.lb &&
        (*kept)->config.client_ip == wanted.client_ip && (*kept)->balancer.flows().capacity() == max_flows) {
      (*kept)->config = wanted;
      (*kept)->balancer.sync(wanted.replicas);
      services.push_back(std::move(*kept));
    } else {
      services.push_back(make_service(wanted, max_flows));
    }
  }
  services_ = std::move(services);
  services_by_replica_.clear();
  for (std::uint32_t index = 0; index < services_.size(); ++index)
    for (const auto& replica : services_[index]->config.replicas)
      services_by_replica_[to_flow_address(pkt::to_ip_addr(replica.address))].push_back(index);
  domains_ = std::move(domains);
  dns_ports_ = domains_ ? ingress.domain_routing.dns_ports : std::vector<std::uint16_t>{};
  for (const auto& service : services_)
    for (const auto& replica : service->config.replicas) neighbours_.resolve(replica.address);
  refresh_neighbours();
}

bool Forwarding::set_replica_health(const std::string& service, const config::IpAddress& replica, bool healthy) {
  for (auto& candidate : services_) {
    if (candidate->config.name != service) continue;
    auto& balancer = candidate->balancer.balancer();
    const auto ref = balancer.find(replica);
    return ref && balancer.set_healthy(*ref, healthy);
  }
  return false;
}

std::size_t Forwarding::AddressHash::operator()(const balance::Address& address) const noexcept {
  std::uint64_t high, low;
  std::memcpy(&high, address.data(), 8);
  std::memcpy(&low, address.data() + 8, 8);
  return static_cast<std::size_t>((high * 0x9E3779B97F4A7C15ull) ^ low ^ (low >> 29));
}

void Forwarding::refresh_neighbours() {
  for (auto& service : services_) {
    const auto& balancer = service->balancer.balancer();
    service->macs.assign(balancer.slot_count(), std::nullopt);
    for (std::uint32_t slot = 0; slot < balancer.slot_count(); ++slot) {
      const auto ref = balancer.current(slot);
      if (!balancer.is_current(ref) || !balancer.address(ref)) continue;
      const auto mac = neighbours_.lookup(*balancer.address(ref));
      if (mac) service->macs[slot] = *mac;
      else neighbours_.resolve(*balancer.address(ref));
    }
  }
}

void Forwarding::expire(Timestamp now) {
  for (auto& service : services_) service->balancer.expire(now, kExpireBudget);
}

Action Forwarding::drop(ForwardDrop reason) noexcept {
  ++counters_.drops[static_cast<size_t>(reason)];
  return Action::Drop;
}

// A sender behind a veth with TX checksum offload (a replica, or a client on the same machine)
// leaves its checksum for hardware to finish; nothing on an XDP path will. Rewrites update a
// checksum incrementally, which is right for a complete one only: compute a partial one afresh.
void Forwarding::finish_partial_checksum(const pkt::PacketView& view, bool partial) noexcept {
  if (!partial) return;
  pkt::csum::set_l4(view);
  ++counters_.checksums_completed;
}

Action Forwarding::client_frame(std::span<std::uint8_t> buffer, std::uint32_t& length, Timestamp now) noexcept {
  pkt::PacketView view;
  if (conformity_->check(buffer.first(length), static_cast<std::uint64_t>(now.count()), view) != pkt::DropReason::None)
    return Action::Drop; // counted by the conformity check
  const pkt::IpAddr destination = view.destination();
  if (std::find(service_ips_.begin(), service_ips_.end(), destination) == service_ips_.end())
    return drop(ForwardDrop::NotServiceIp);
  std::memcpy(gateway_mac_.data(), view.data + 6, 6); // the host's veth: where answers go
  if (view.is_icmp() && !view.icmp_echo) return client_icmp_error(view, now);
  // Before any flow state: a packet that cannot pass takes neither a flow nor a port.
  if (view.l3_len() > links_.overlay_mtu) return too_big(buffer, length, view);

  std::uint32_t service_index = 0;
  if (domains_) {
    Action answered = Action::Drop;
    const auto chosen = choose_service(buffer, length, view, answered);
    if (!chosen) return answered;
    service_index = *chosen;
  }
  Service& service = *services_[service_index];
  const FlowKey key = flow_key(view);
  const auto decision = service.balancer.client_packet(key, balance::hash(key), view.tcp_flags, now);
  if (!decision.flow) return Action::Drop; // counted by the balancer
  const auto replica = decision.flow->replica;
  const bool partial = pkt::csum::l4_partial(view);
  pkt::nat::set_destination(view, to_ip_addr(service.balancer.balancer().flow_address(replica)));
  if (service.config.client_ip == config::ClientIp::Nat) {
    pkt::nat::set_source(view, view.ip_version == 4 ? *overlay_v4_ : *overlay_v6_); // the balancer checked it exists
    pkt::nat::set_source_port(view, decision.flow->nat_port);
  }
  finish_partial_checksum(view, partial);
  held_for_ = HoldTicket{service_index, replica.slot};
  const auto mac = replica_mac(held_for_);
  if (!mac) {
    if (const auto& address = service.balancer.balancer().address(replica)) neighbours_.resolve(*address);
    pkt::nat::set_macs(view, links_.overlay_mac, {});
    return Action::Hold;
  }
  pkt::nat::set_macs(view, links_.overlay_mac, *mac);
  ++counters_.to_overlay;
  return Action::ToOverlay;
}

// Several services behind one ingress. A UDP datagram to a dns_ports port takes the service its
// query name picks; every query is routed by its own name, so one client socket asking for names
// of two services has a flow in each service's table (flows are per service: the replies are told
// apart by the replica's address). The terminated TCP ports (tls_ports, http_ports) reach the
// ingress's kernel, not this path (only their fragments could: they have no port to go by). Every
// other packet goes to unknown_domain's service, or is dropped when it is "reject".
std::optional<std::uint32_t> Forwarding::choose_service(std::span<std::uint8_t> buffer, std::uint32_t& length,
                                                        pkt::PacketView& view, Action& action) noexcept {
  const bool dns = view.l4_proto == pkt::kProtoUdp && view.has_l4 &&
                   std::find(dns_ports_.begin(), dns_ports_.end(), view.dst_port) != dns_ports_.end();
  if (!dns) {
    if (const auto fallback = domains_->fallback()) return static_cast<std::uint32_t>(fallback->service);
    action = drop(ForwardDrop::NoDomainPort);
    return std::nullopt;
  }
  // A fragment does not hold the whole query: its name cannot be trusted (or read).
  if (view.is_fragment) {
    action = drop(ForwardDrop::BadDns);
    return std::nullopt;
  }
  const domain::DnsQuery query = domain::parse_dns_query({view.data + view.payload_off, view.payload_len()});
  std::optional<domain::DomainTable::Match> match;
  switch (query.status) {
  case domain::Status::Found: match = domains_->match(query.name); break;
  case domain::Status::NoName:
  case domain::Status::BadName: match = domains_->fallback(); break;
  default: // NotProtocol (a response, another opcode), Malformed, TooLong
    action = drop(ForwardDrop::BadDns);
    return std::nullopt;
  }
  if (!match) {
    action = refuse_dns(buffer, length, view);
    return std::nullopt;
  }
  ++services_[match->service]->dns_routed;
  return static_cast<std::uint32_t>(match->service);
}

// The REFUSED answer, written over the query: from the service IP and port the client asked,
// with a plain IP header (no IPv4 options, no IPv6 extension headers: nothing of the query's
// path is echoed back), out of eth0 to the host.
Action Forwarding::refuse_dns(std::span<std::uint8_t> buffer, std::uint32_t& length, const pkt::PacketView& view) noexcept {
  std::uint8_t* const payload = view.data + view.payload_off;
  const auto answer = domain::refuse_in_place({payload, view.payload_len()});
  if (!answer) return drop(ForwardDrop::BadDns);
  const std::uint32_t address_length = view.addr_len();
  std::array<std::uint8_t, 16> client{}, service{};
  std::memcpy(client.data(), view.src_addr(), address_length);
  std::memcpy(service.data(), view.dst_addr(), address_length);
  const std::uint16_t client_port = view.src_port, service_port = view.dst_port;

  const std::uint32_t ip_header = view.ip_version == 4 ? pkt::kIpv4MinHeaderLen : pkt::kIpv6HeaderLen;
  std::uint8_t* const ip = view.data + view.l3_off;
  std::uint8_t* const udp = ip + ip_header;
  const std::uint32_t udp_length = pkt::kUdpHeaderLen + static_cast<std::uint32_t>(*answer);
  std::memmove(udp + pkt::kUdpHeaderLen, payload, *answer); // never further: the answer is shorter
  if (view.ip_version == 4) {
    std::memset(ip, 0, ip_header);
    ip[0] = 0x45;
    pkt::store_be16(ip + 2, static_cast<std::uint16_t>(ip_header + udp_length));
    pkt::store_be16(ip + 6, 0x4000); // DF
    ip[8] = 64;
    ip[9] = pkt::kProtoUdp;
    std::memcpy(ip + 12, service.data(), 4);
    std::memcpy(ip + 16, client.data(), 4);
  } else {
    std::memset(ip, 0, 8);
    ip[0] = 0x60;
    pkt::store_be16(ip + 4, static_cast<std::uint16_t>(udp_length));
    ip[6] = pkt::kProtoUdp;
    ip[7] = 64;
    std::memcpy(ip + 8, service.data(), 16);
    std::memcpy(ip + 24, client.data(), 16);
  }
  pkt::store_be16(udp, service_port);
  pkt::store_be16(udp + 2, client_port);
  pkt::store_be16(udp + 4, static_cast<std::uint16_t>(udp_length));
  pkt::store_be16(udp + 6, 0);
  length = view.l3_off + ip_header + udp_length;

  pkt::PacketView reply;
  if (pkt::parse_frame(buffer.first(length), reply) != pkt::ParseStatus::Ok) return drop(ForwardDrop::BadDns);
  if (reply.ip_version == 4) pkt::csum::set_ipv4_header(reply);
  pkt::csum::set_l4(reply);
  pkt::nat::set_macs(reply, links_.client_mac, gateway_mac_);
  ++counters_.dns_refused;
  ++counters_.to_client;
  return Action::ToClient;
}

std::optional<pkt::nat::Mac> Forwarding::replica_mac(const HoldTicket& ticket) const noexcept {
  if (ticket.service >= services_.size()) return std::nullopt;
  const auto& macs = services_[ticket.service]->macs;
  return ticket.slot < macs.size() ? macs[ticket.slot] : std::nullopt;
}

Action Forwarding::too_big(std::span<std::uint8_t> buffer, std::uint32_t& length, const pkt::PacketView& view) noexcept {
  const std::uint32_t answer = pkt::make_too_big_reply(buffer, view, view.destination(), links_.overlay_mtu,
                                                       links_.client_mac, gateway_mac_);
  if (answer == 0) return drop(ForwardDrop::TooBig);
  length = answer;
  ++counters_.too_big_answered;
  ++counters_.to_client;
  return Action::ToClient;
}

// An ICMP error from the client's side (the client, or a router on its path: "fragmentation
// needed" for our replies) quotes {service -> client}; the replica must get it about the packet
// it sent: {replica -> ingress overlay address and NAT port} (nat) or {replica -> client}.
Action Forwarding::client_icmp_error(pkt::PacketView& view, Timestamp now) noexcept {
  pkt::InnerView inner;
  if (pkt::parse_icmp_error_inner(view, inner) != pkt::ParseStatus::Ok || !inner.has_l4)
    return drop(ForwardDrop::IcmpUntranslatable);
  // The flow's forward key is the quoted packet reversed: {client -> service}.
  FlowKey forward{};
  forward.src = to_flow_address(pkt::IpAddr::from_bytes(inner.ip_version, view.data + inner.dst_addr_off()));
  forward.dst = to_flow_address(pkt::IpAddr::from_bytes(inner.ip_version, view.data + inner.src_addr_off()));
  forward.proto = static_cast<balance::IpProto>(inner.l4_proto);
  if (inner.icmp_echo) forward.src_port = inner.icmp_id;
  else forward.src_port = inner.dst_port, forward.dst_port = inner.src_port;
  const std::uint64_t hash = balance::hash(forward);
  for (std::uint32_t index = 0; index < services_.size(); ++index) {
    Service& service = *services_[index];
    const balance::FlowEntry* flow = service.balancer.lookup(forward, hash, now);
    if (!flow) continue;
    const auto mac = replica_mac({index, flow->replica.slot});
    if (!mac) return drop(ForwardDrop::NoNeighbour);
    const pkt::IpAddr replica = to_ip_addr(service.balancer.balancer().flow_address(flow->replica));
    const bool nat = service.config.client_ip == config::ClientIp::Nat;
    const auto& overlay = view.ip_version == 4 ? overlay_v4_ : overlay_v6_;
    pkt::nat::IcmpErrorRewrite rewrite{.outer_destination = replica, .inner_source = replica};
    if (nat) {
      rewrite.outer_source = *overlay;
      rewrite.inner_destination = *overlay;
      if (!inner.icmp_echo) rewrite.inner_destination_port = flow->nat_port;
    }
    if (pkt::nat::translate_icmp_error(view, rewrite) != pkt::nat::IcmpTranslateStatus::Ok)
      return drop(ForwardDrop::IcmpUntranslatable);
    pkt::nat::set_macs(view, links_.overlay_mac, *mac);
    ++counters_.to_overlay;
    return Action::ToOverlay;
  }
  return drop(ForwardDrop::IcmpUntranslatable);
}

Action Forwarding::overlay_frame(std::span<std::uint8_t> buffer, std::uint32_t& length, Timestamp now) noexcept {
  pkt::PacketView view;
  if (pkt::parse_frame(buffer.first(length), view) != pkt::ParseStatus::Ok) return drop(ForwardDrop::BadOverlayFrame);
  const bool echo_or_l4 = !view.is_icmp() || view.icmp_echo;
  if (!echo_or_l4) return overlay_icmp_error(view, now);

  const FlowKey key = flow_key(view);
  const std::uint64_t hash = balance::hash(key);
  // Only the services the sender is a replica of can have its flows (a removed replica's are not
  // answered any more, in any service).
  const auto sender = services_by_replica_.find(key.src);
  if (sender == services_by_replica_.end()) return drop(ForwardDrop::UnknownReply);
  for (const std::uint32_t index : sender->second) {
    auto& service = services_[index];
    const balance::FlowEntry* flow = service->balancer.reply_packet(key, hash, view.tcp_flags, now);
    if (!flow) continue;
    const bool partial = pkt::csum::l4_partial(view);
    // Back to what the client sent to: the service IP and port, from the client's own port.
    pkt::nat::set_source(view, to_ip_addr(flow->forward.dst));
    if (!view.is_icmp()) pkt::nat::set_source_port(view, flow->forward.dst_port);
    pkt::nat::set_destination(view, to_ip_addr(flow->forward.src));
    pkt::nat::set_destination_port(view, flow->forward.src_port);
    finish_partial_checksum(view, partial);
    pkt::nat::set_macs(view, links_.client_mac, gateway_mac_);
    ++counters_.to_client;
    return Action::ToClient;
  }
  return drop(ForwardDrop::UnknownReply);
}

// An ICMP error from the overlay side (a replica's port unreachable, a router's frag-needed)
// about a packet we forwarded: it quotes {overlay or client address -> replica}; the client must
// see it about {client -> service IP}.
Action Forwarding::overlay_icmp_error(pkt::PacketView& view, Timestamp now) noexcept {
  pkt::InnerView inner;
  if (pkt::parse_icmp_error_inner(view, inner) != pkt::ParseStatus::Ok || !inner.has_l4)
    return drop(ForwardDrop::IcmpUntranslatable);
  // The quoted packet went ingress -> replica; its answer's flow key is the quoted one reversed.
  FlowKey quoted{};
  quoted.src = to_flow_address(pkt::IpAddr::from_bytes(inner.ip_version, view.data + inner.src_addr_off()));
  quoted.dst = to_flow_address(pkt::IpAddr::from_bytes(inner.ip_version, view.data + inner.dst_addr_off()));
  quoted.proto = static_cast<balance::IpProto>(inner.l4_proto);
  if (inner.icmp_echo) quoted.src_port = inner.icmp_id;
  else quoted.src_port = inner.src_port, quoted.dst_port = inner.dst_port;
  const FlowKey reply = inner.icmp_echo ? FlowKey{.src = quoted.dst, .dst = quoted.src, .src_port = 0,
                                                  .dst_port = inner.icmp_id, .proto = quoted.proto}
                                        : quoted.reversed();
  const std::uint64_t hash = balance::hash(reply);
  for (auto& service : services_) {
    const balance::FlowEntry* flow = service->balancer.lookup_reply(reply, hash, now);
    if (!flow) continue;
    pkt::nat::IcmpErrorRewrite rewrite{
        .outer_source = to_ip_addr(flow->forward.dst),
        .outer_destination = to_ip_addr(flow->forward.src),
        .inner_source = to_ip_addr(flow->forward.src),
        .inner_destination = to_ip_addr(flow->forward.dst),
        .inner_source_port = flow->forward.src_port,
        .inner_destination_port = inner.icmp_echo ? std::optional<std::uint16_t>() : flow->forward.dst_port,
    };
    if (pkt::nat::translate_icmp_error(view, rewrite) != pkt::nat::IcmpTranslateStatus::Ok)
      return drop(ForwardDrop::IcmpUntranslatable);
    pkt::nat::set_macs(view, links_.client_mac, gateway_mac_);
    ++counters_.to_client;
    return Action::ToClient;
  }
  return drop(ForwardDrop::UnknownReply);
}

nlohmann::json Forwarding::status() const {
  nlohmann::json drops = nlohmann::json::object();
  pkt::DropCounters conformity = conformity_before_;
  for (std::size_t reason = 0; reason < conformity.size(); ++reason) conformity[reason] += conformity_->counters()[reason];
  for (std::size_t reason = 1; reason < conformity.size(); ++reason)
    if (conformity[reason] != 0) drops[std::string(pkt::drop_reason_name(static_cast<pkt::DropReason>(reason)))] = conformity[reason];
  for (std::size_t reason = 0; reason < counters_.drops.size(); ++reason)
    if (counters_.drops[reason] != 0) drops[std::string(to_string(static_cast<ForwardDrop>(reason)))] = counters_.drops[reason];

  nlohmann::json services = nlohmann::json::array();
  for (const auto& service : services_) {
    const auto& counters = service->balancer.counters();
    for (std::size_t reason = 0; reason < balance::kDropReasons; ++reason)
      if (counters.drops[reason] != 0)
        drops[balance::to_string(static_cast<balance::DropReason>(reason))] =
            drops.value(balance::to_string(static_cast<balance::DropReason>(reason)), 0ull) + counters.drops[reason];
    nlohmann::json replicas = nlohmann::json::array();
    const auto& balancer = service->balancer.balancer();
    for (std::uint32_t slot = 0; slot < balancer.slot_count(); ++slot) {
      const auto ref = balancer.current(slot);
      if (!balancer.is_current(ref) || !balancer.address(ref)) continue;
      replicas.push_back({{"address", balancer.address(ref)->to_string()},
                          {"weight", balancer.weight(ref)},
                          {"healthy", balancer.healthy(ref)},
                          {"active_flows", balancer.active_flows(ref)},
                          {"resolved", slot < service->macs.size() && service->macs[slot].has_value()}});
    }
    services.push_back({{"name", service->config.name},
                        {"lb", config::to_string(service->config.lb)},
                        {"client_ip", config::to_string(service->config.client_ip)},
                        {"flows", service->balancer.flows().size()},
                        {"flow_capacity", service->balancer.flows().capacity()},
                        {"flows_evicted", service->balancer.flows().evictions()},
                        {"flows_created", counters.flows_created},
                        {"flows_moved", counters.flows_moved},
                        {"dns_routed", service->dns_routed},
                        {"replicas", replicas}});
  }
  nlohmann::json rate_limit = nullptr;
  if (const auto& limiter = conformity_->rate_limiter(); limiter.enabled())
    rate_limit = {{"sources", limiter.size()},
                  {"capacity", limiter.capacity()},
                  // Sources forgotten while their bucket was still refilling: the table under pressure.
                  {"evicted_active", rate_limit_evicted_before_ + limiter.stats().evicted_active}};
  return {{"ingress", name_},
          {"accepted", conformity[0]},
          {"rate_limit", rate_limit},
          {"to_overlay", counters_.to_overlay},
          {"to_client", counters_.to_client},
          {"too_big_answered", counters_.too_big_answered},
          {"checksums_completed", counters_.checksums_completed},
          {"dns_refused", counters_.dns_refused},
          {"drops", drops},
          {"services", services}};
}

} // namespace xdpfwd::ingress
