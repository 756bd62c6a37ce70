#include "xdpfwd/netlink.hpp"

#include "xdpfwd/netns.hpp"
#include "xdpfwd/system_error.hpp"

#include <libmnl/libmnl.h>
#include <linux/if_addr.h>
#include <linux/if_link.h>
#include <linux/neighbour.h>
#include <linux/rtnetlink.h>
#include <linux/veth.h>
#include <net/if.h>

#include <cstdio>
#include <cstring>
#include <vector>

namespace xdpfwd {
namespace {

using boost::asio::ip::address;

// Room for any request this file builds; replies of a single object fit as well.
constexpr size_t kBufferSize = 8192;

int family_of(const address& ip) { return ip.is_v4() ? AF_INET : AF_INET6; }

void put_address(nlmsghdr* message, uint16_t type, const address& ip) {
  if (ip.is_v4()) {
    const auto bytes = ip.to_v4().to_bytes();
    mnl_attr_put(message, type, bytes.size(), bytes.data());
  } else {
    const auto bytes = ip.to_v6().to_bytes();
    mnl_attr_put(message, type, bytes.size(), bytes.data());
  }
}

// A request; dumps get no NLM_F_ACK, whose extra answer after NLMSG_DONE would be left unread.
nlmsghdr* start(std::vector<char>& buffer, uint16_t type, uint16_t flags) {
  buffer.assign(kBufferSize, 0);
  nlmsghdr* message = mnl_nlmsg_put_header(buffer.data());
  message->nlmsg_type = type;
  message->nlmsg_flags = NLM_F_REQUEST | flags | ((flags & NLM_F_DUMP) == NLM_F_DUMP ? 0 : NLM_F_ACK);
  return message;
}

// A link request (RTM_GETLINK, RTM_NEWLINK, RTM_DELLINK) about the link ifindex, or with a name
// the link of that name (to find, or to create).
nlmsghdr* start_link(std::vector<char>& buffer, uint16_t type, uint16_t flags, int ifindex,
                     const std::string& name = {}) {
  nlmsghdr* request = start(buffer, type, flags);
  auto* info = static_cast<ifinfomsg*>(mnl_nlmsg_put_extra_header(request, sizeof(ifinfomsg)));
  info->ifi_family = AF_UNSPEC;
  info->ifi_index = ifindex;
  if (!name.empty()) mnl_attr_put_strz(request, IFLA_IFNAME, name.c_str());
  return request;
}

// mnl_attr_for_each is a C macro; spelled out for C++'s stricter pointer conversions.
template <typename Fn>
void for_each_attribute(const nlmsghdr* message, size_t header_size, Fn&& fn) {
  const auto* end = static_cast<const char*>(mnl_nlmsg_get_payload_tail(message));
  for (auto* attribute = static_cast<const nlattr*>(mnl_nlmsg_get_payload_offset(message, header_size));
       mnl_attr_ok(attribute, static_cast<int>(end - reinterpret_cast<const char*>(attribute)));
       attribute = mnl_attr_next(attribute))
    fn(attribute);
}

int parse_link(const nlmsghdr* message, void* data) {
  auto* link = static_cast<LinkInfo*>(data);
  const auto* info = static_cast<const ifinfomsg*>(mnl_nlmsg_get_payload(message));
  link->ifindex = info->ifi_index;
  link->flags = info->ifi_flags;
  for_each_attribute(message, sizeof(*info), [&](const nlattr* attribute) {
    switch (mnl_attr_get_type(attribute)) {
    case IFLA_IFNAME:
      link->name = mnl_attr_get_str(attribute);
      break;
    case IFLA_ADDRESS:
      if (mnl_attr_get_payload_len(attribute) == link->mac.size())
        std::memcpy(link->mac.data(), mnl_attr_get_payload(attribute), link->mac.size());
      break;
    case IFLA_MTU:
      link->mtu = mnl_attr_get_u32(attribute);
      break;
    }
  });
  return MNL_CB_OK;
}

// Dump callback of RTM_GETADDR: finds the ifindex that holds AddressSearch::wanted.
struct AddressSearch {
  address wanted;
  int ifindex = 0;
};

int match_address(const nlmsghdr* message, void* data) {
  auto* search = static_cast<AddressSearch*>(data);
  const auto* info = static_cast<const ifaddrmsg*>(mnl_nlmsg_get_payload(message));
  for_each_attribute(message, sizeof(*info), [&](const nlattr* attribute) {
    if (mnl_attr_get_type(attribute) != IFA_LOCAL && mnl_attr_get_type(attribute) != IFA_ADDRESS) return;
    const auto* bytes = static_cast<const unsigned char*>(mnl_attr_get_payload(attribute));
    address found;
    if (info->ifa_family == AF_INET && mnl_attr_get_payload_len(attribute) == 4) {
      boost::asio::ip::address_v4::bytes_type v4;
      std::memcpy(v4.data(), bytes, v4.size());
      found = boost::asio::ip::address_v4(v4);
    } else if (info->ifa_family == AF_INET6 && mnl_attr_get_payload_len(attribute) == 16) {
      boost::asio::ip::address_v6::bytes_type v6;
      std::memcpy(v6.data(), bytes, v6.size());
      found = boost::asio::ip::address_v6(v6);
    } else {
      return;
    }
    if (found == search->wanted) search->ifindex = static_cast<int>(info->ifa_index);
  });
  return MNL_CB_OK;
}

} // namespace

std::string to_string(const MacAddress& mac) {
  char text[18];
  std::snprintf(text, sizeof(text), "%02x:%02x:%02x:%02x:%02x:%02x", mac[0], mac[1], mac[2], mac[3],
                mac[4], mac[5]);
  return text;
}

void Netlink::SocketCloser::operator()(mnl_socket* socket) const { mnl_socket_close(socket); }

Netlink::Netlink(mnl_socket* socket) : socket_(socket), port_id_(mnl_socket_get_portid(socket)) {}
Netlink::Netlink(Netlink&&) noexcept = default;
Netlink& Netlink::operator=(Netlink&&) noexcept = default;
Netlink::~Netlink() = default;

Netlink Netlink::open() {
  mnl_socket* socket = mnl_socket_open2(NETLINK_ROUTE, SOCK_CLOEXEC);
  if (socket == nullptr) throw_errno("open rtnetlink socket");
  if (mnl_socket_bind(socket, 0, MNL_SOCKET_AUTOPID) < 0) {
    const int error = errno;
    mnl_socket_close(socket);
    throw_errno(error, "bind rtnetlink socket");
  }
  return Netlink(socket);
}

Netlink Netlink::open_in(int netns_fd) {
  std::optional<Netlink> opened;
  run_in_netns(netns_fd, [&] { opened.emplace(open()); });
  return std::move(*opened);
}

void Netlink::transact(nlmsghdr* request, const std::string& context,
                       int (*on_message)(const nlmsghdr*, void*), void* data) {
  request->nlmsg_seq = ++sequence_;
  if (mnl_socket_sendto(socket_.get(), request, request->nlmsg_len) < 0) throw_errno(context);
  std::vector<char> reply(MNL_SOCKET_BUFFER_SIZE);
  for (;;) {
    const ssize_t length = mnl_socket_recvfrom(socket_.get(), reply.data(), reply.size());
    if (length < 0) throw_errno(context);
    const int result = mnl_cb_run(reply.data(), length, request->nlmsg_seq, port_id_, on_message, data);
    if (result < 0) throw_errno(context);
    if (result == MNL_CB_STOP) return;
  }
}

std::optional<LinkInfo> Netlink::find_link(const std::string& name) {
  std::vector<char> buffer;
  nlmsghdr* request = start_link(buffer, RTM_GETLINK, 0, 0, name);
  LinkInfo link;
  try {
    transact(request, "look up link " + name, parse_link, &link);
  } catch (const std::system_error& error) {
    if (error.code().value() == ENODEV) return std::nullopt;
    throw;
  }
  return link;
}

LinkInfo Netlink::link(const std::string& name) {
  auto found = find_link(name);
  if (!found) throw_errno(ENODEV, "look up link " + name);
  return *found;
}

LinkInfo Netlink::link(int ifindex) {
  std::vector<char> buffer;
  nlmsghdr* request = start_link(buffer, RTM_GETLINK, 0, ifindex);
  LinkInfo link;
  transact(request, "look up link #" + std::to_string(ifindex), parse_link, &link);
  return link;
}

std::optional<LinkInfo> Netlink::find_link_with_address(const address& ip) {
  std::vector<char> buffer;
  nlmsghdr* request = start(buffer, RTM_GETADDR, NLM_F_DUMP);
  auto* info = static_cast<ifaddrmsg*>(mnl_nlmsg_put_extra_header(request, sizeof(ifaddrmsg)));
  info->ifa_family = family_of(ip);
  AddressSearch search{ip};
  transact(request, "list addresses", match_address, &search);
  if (search.ifindex == 0) return std::nullopt;
  return link(search.ifindex);
}

void Netlink::create_vxlan(const VxlanSpec& spec, int target_netns_fd) {
  std::vector<char> buffer;
  nlmsghdr* request = start_link(buffer, RTM_NEWLINK, NLM_F_CREATE | NLM_F_EXCL, 0, spec.name);
  mnl_attr_put_u32(request, IFLA_NET_NS_FD, static_cast<uint32_t>(target_netns_fd));
  nlattr* link_info = mnl_attr_nest_start(request, IFLA_LINKINFO);
  mnl_attr_put_strz(request, IFLA_INFO_KIND, "vxlan");
  nlattr* data = mnl_attr_nest_start(request, IFLA_INFO_DATA);
  mnl_attr_put_u32(request, IFLA_VXLAN_ID, spec.vni);
  if (spec.local) put_address(request, spec.local->is_v4() ? IFLA_VXLAN_LOCAL : IFLA_VXLAN_LOCAL6, *spec.local);
  if (spec.underlay_ifindex != 0) mnl_attr_put_u32(request, IFLA_VXLAN_LINK, static_cast<uint32_t>(spec.underlay_ifindex));
  mnl_attr_put_u16(request, IFLA_VXLAN_PORT, htons(spec.port));
  mnl_attr_put_u8(request, IFLA_VXLAN_LEARNING, 1); // replicas' MACs are learned from their frames
  mnl_attr_nest_end(request, data);
  mnl_attr_nest_end(request, link_info);
  transact(request, "create vxlan " + spec.name + " (vni " + std::to_string(spec.vni) + ")");
}

void Netlink::add_vxlan_remote(const LinkInfo& vxlan, const address& vtep) {
  std::vector<char> buffer;
  nlmsghdr* request = start(buffer, RTM_NEWNEIGH, NLM_F_CREATE | NLM_F_APPEND);
  auto* neighbor = static_cast<ndmsg*>(mnl_nlmsg_put_extra_header(request, sizeof(ndmsg)));
  neighbor->ndm_family = AF_BRIDGE;
  neighbor->ndm_ifindex = vxlan.ifindex;
  neighbor->ndm_state = NUD_PERMANENT | NUD_NOARP;
  neighbor->ndm_flags = NTF_SELF;
  const MacAddress all_zeros{};
  mnl_attr_put(request, NDA_LLADDR, all_zeros.size(), all_zeros.data());
  put_address(request, NDA_DST, vtep);
  transact(request, "add remote VTEP " + vtep.to_string() + " to " + vxlan.name);
}

void Netlink::create_veth(const std::string& name, const std::string& peer_name, int peer_netns_fd) {
  std::vector<char> buffer;
  nlmsghdr* request = start_link(buffer, RTM_NEWLINK, NLM_F_CREATE | NLM_F_EXCL, 0, name);
  nlattr* link_info = mnl_attr_nest_start(request, IFLA_LINKINFO);
  mnl_attr_put_strz(request, IFLA_INFO_KIND, "veth");
  nlattr* info_data = mnl_attr_nest_start(request, IFLA_INFO_DATA);
  nlattr* peer = mnl_attr_nest_start(request, VETH_INFO_PEER);
  mnl_nlmsg_put_extra_header(request, sizeof(ifinfomsg));
  mnl_attr_put_strz(request, IFLA_IFNAME, peer_name.c_str());
  mnl_attr_put_u32(request, IFLA_NET_NS_FD, static_cast<uint32_t>(peer_netns_fd));
  mnl_attr_nest_end(request, peer);
  mnl_attr_nest_end(request, info_data);
  mnl_attr_nest_end(request, link_info);
  transact(request, "create veth " + name + " (peer " + peer_name + ")");
}

void Netlink::create_bridge(const std::string& name) {
  std::vector<char> buffer;
  nlmsghdr* request = start_link(buffer, RTM_NEWLINK, NLM_F_CREATE | NLM_F_EXCL, 0, name);
  nlattr* link_info = mnl_attr_nest_start(request, IFLA_LINKINFO);
  mnl_attr_put_strz(request, IFLA_INFO_KIND, "bridge");
  mnl_attr_nest_end(request, link_info);
  transact(request, "create bridge " + name);
}

void Netlink::set_master(const LinkInfo& link, const LinkInfo& bridge) {
  std::vector<char> buffer;
  nlmsghdr* request = start_link(buffer, RTM_NEWLINK, 0, link.ifindex);
  mnl_attr_put_u32(request, IFLA_MASTER, static_cast<uint32_t>(bridge.ifindex));
  transact(request, "make " + link.name + " a port of " + bridge.name);
}

bool Netlink::delete_link(const std::string& name) {
  std::vector<char> buffer;
  nlmsghdr* request = start_link(buffer, RTM_DELLINK, 0, 0, name);
  try {
    transact(request, "delete link " + name);
  } catch (const std::system_error& error) {
    if (error.code().value() == ENODEV) return false;
    throw;
  }
  return true;
}

void Netlink::set_up(const LinkInfo& link) {
  std::vector<char> buffer;
  nlmsghdr* request = start_link(buffer, RTM_NEWLINK, 0, link.ifindex);
  auto* info = static_cast<ifinfomsg*>(mnl_nlmsg_get_payload(request));
  info->ifi_flags = IFF_UP;
  info->ifi_change = IFF_UP;
  transact(request, "set link " + link.name + " up");
}

void Netlink::set_mtu(const LinkInfo& link, unsigned mtu) {
  std::vector<char> buffer;
  nlmsghdr* request = start_link(buffer, RTM_NEWLINK, 0, link.ifindex);
  mnl_attr_put_u32(request, IFLA_MTU, mtu);
  transact(request, "set mtu " + std::to_string(mtu) + " on " + link.name);
}

void Netlink::add_address(const LinkInfo& link, const address& ip, int prefix_len, bool nodad) {
  std::vector<char> buffer;
  nlmsghdr* request = start(buffer, RTM_NEWADDR, NLM_F_CREATE | NLM_F_REPLACE);
  auto* info = static_cast<ifaddrmsg*>(mnl_nlmsg_put_extra_header(request, sizeof(ifaddrmsg)));
  info->ifa_family = family_of(ip);
  info->ifa_prefixlen = prefix_len;
  info->ifa_index = link.ifindex;
  info->ifa_scope = RT_SCOPE_UNIVERSE;
  put_address(request, IFA_LOCAL, ip);
  put_address(request, IFA_ADDRESS, ip);
  if (nodad && ip.is_v6()) mnl_attr_put_u32(request, IFA_FLAGS, IFA_F_NODAD);
  transact(request, "add address " + ip.to_string() + "/" + std::to_string(prefix_len) + " to " + link.name);
}

void Netlink::add_route(const LinkInfo& link, const address& destination, int prefix_len,
                        const std::optional<address>& gateway) {
  std::vector<char> buffer;
  nlmsghdr* request = start(buffer, RTM_NEWROUTE, NLM_F_CREATE | NLM_F_REPLACE);
  auto* route = static_cast<rtmsg*>(mnl_nlmsg_put_extra_header(request, sizeof(rtmsg)));
  route->rtm_family = family_of(destination);
  route->rtm_dst_len = prefix_len;
  route->rtm_table = RT_TABLE_MAIN;
  route->rtm_protocol = kRouteProtocol;
  route->rtm_type = RTN_UNICAST;
  route->rtm_scope = gateway ? RT_SCOPE_UNIVERSE : RT_SCOPE_LINK;
  if (gateway) route->rtm_flags |= RTNH_F_ONLINK;
  if (prefix_len > 0) put_address(request, RTA_DST, destination);
  if (gateway) put_address(request, RTA_GATEWAY, *gateway);
  mnl_attr_put_u32(request, RTA_OIF, link.ifindex);
  std::string context = "add route " + destination.to_string() + "/" + std::to_string(prefix_len);
  if (gateway) context += " via " + gateway->to_string();
  transact(request, context + " dev " + link.name);
}

void Netlink::add_permanent_neighbor(const LinkInfo& link, const address& ip, const MacAddress& mac) {
  std::vector<char> buffer;
  nlmsghdr* request = start(buffer, RTM_NEWNEIGH, NLM_F_CREATE | NLM_F_REPLACE);
  auto* neighbor = static_cast<ndmsg*>(mnl_nlmsg_put_extra_header(request, sizeof(ndmsg)));
  neighbor->ndm_family = family_of(ip);
  neighbor->ndm_ifindex = link.ifindex;
  neighbor->ndm_state = NUD_PERMANENT;
  put_address(request, NDA_DST, ip);
  mnl_attr_put(request, NDA_LLADDR, mac.size(), mac.data());
  transact(request, "add neighbour " + ip.to_string() + " lladdr " + to_string(mac) + " dev " + link.name);
}

} // namespace xdpfwd
