#include "neighbour_cache.hpp"

#include "xdpfwd/system_error.hpp"

#include <libmnl/libmnl.h>
#include <linux/neighbour.h>
#include <linux/rtnetlink.h>
#include <spdlog/spdlog.h>
#include <poll.h>
#include <sys/socket.h>

#include <cstring>
#include <vector>

namespace xdpfwd::ingress {
namespace {

using boost::asio::ip::address;

// States in which the kernel's MAC may be used (what neigh_valid() accepts).
constexpr unsigned kUsableStates = NUD_REACHABLE | NUD_STALE | NUD_DELAY | NUD_PROBE | NUD_PERMANENT | NUD_NOARP;

std::optional<address> address_of(int family, const nlattr* attribute) {
  const auto* bytes = static_cast<const unsigned char*>(mnl_attr_get_payload(attribute));
  if (family == AF_INET && mnl_attr_get_payload_len(attribute) == 4) {
    boost::asio::ip::address_v4::bytes_type v4;
    std::memcpy(v4.data(), bytes, v4.size());
    return boost::asio::ip::address_v4(v4);
  }
  if (family == AF_INET6 && mnl_attr_get_payload_len(attribute) == 16) {
    boost::asio::ip::address_v6::bytes_type v6;
    std::memcpy(v6.data(), bytes, v6.size());
    return boost::asio::ip::address_v6(v6);
  }
  return std::nullopt;
}

} // namespace

size_t NeighbourCache::AddressHash::operator()(const address& ip) const {
  if (ip.is_v4()) return std::hash<unsigned>()(ip.to_v4().to_uint());
  const auto bytes = ip.to_v6().to_bytes();
  size_t hash = 0;
  for (auto byte : bytes) hash = hash * 131 + byte;
  return hash;
}

NeighbourCache::NeighbourCache(int ifindex) : ifindex_(ifindex) {
  socket_.reset(::socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC | SOCK_NONBLOCK, NETLINK_ROUTE));
  if (!socket_) throw_errno("open rtnetlink socket for neighbours");
  sockaddr_nl local{};
  local.nl_family = AF_NETLINK;
  local.nl_groups = 1u << (RTNLGRP_NEIGH - 1);
  if (::bind(socket_.get(), reinterpret_cast<sockaddr*>(&local), sizeof(local)) < 0)
    throw_errno("subscribe to neighbour events");

  std::vector<char> buffer(MNL_SOCKET_BUFFER_SIZE);
  nlmsghdr* request = mnl_nlmsg_put_header(buffer.data());
  request->nlmsg_type = RTM_GETNEIGH;
  request->nlmsg_flags = NLM_F_REQUEST | NLM_F_DUMP;
  request->nlmsg_seq = ++sequence_;
  auto* info = static_cast<ndmsg*>(mnl_nlmsg_put_extra_header(request, sizeof(ndmsg)));
  info->ndm_family = AF_UNSPEC;
  send_request(request, request->nlmsg_len);
  receive(true);
}

void NeighbourCache::send_request(void* message, size_t length) {
  sockaddr_nl kernel{};
  kernel.nl_family = AF_NETLINK;
  if (::sendto(socket_.get(), message, length, 0, reinterpret_cast<sockaddr*>(&kernel), sizeof(kernel)) < 0)
    throw_errno("send neighbour request");
}

void NeighbourCache::process_events() { receive(false); }

// Reads what is queued; with wait_for_dump, waits (at most a second at a time) until the dump
// has ended with NLMSG_DONE.
void NeighbourCache::receive(bool wait_for_dump) {
  std::vector<char> buffer(MNL_SOCKET_BUFFER_SIZE);
  for (;;) {
    const ssize_t length = ::recv(socket_.get(), buffer.data(), buffer.size(), MSG_DONTWAIT);
    if (length < 0) {
      if (errno == EINTR) continue;
      if (errno == EAGAIN) {
        if (!wait_for_dump) return;
        pollfd entry{socket_.get(), POLLIN, 0};
        if (::poll(&entry, 1, 1000) <= 0) throw_errno(ETIMEDOUT, "read the neighbour table");
        continue;
      }
      if (errno == ENOBUFS) { // events were lost: what we know may be stale, ask again later
        spdlog::warn("neighbour events overflowed; entries are refreshed as replicas are resolved");
        continue;
      }
      throw_errno("read neighbour events");
    }
    int remaining = static_cast<int>(length);
    for (auto* message = reinterpret_cast<const nlmsghdr*>(buffer.data()); mnl_nlmsg_ok(message, remaining);
         message = mnl_nlmsg_next(message, &remaining)) {
      if (message->nlmsg_type == NLMSG_DONE) return;
      if (message->nlmsg_type == NLMSG_ERROR) {
        const auto* error = static_cast<const nlmsgerr*>(mnl_nlmsg_get_payload(message));
        if (error->error != 0) spdlog::debug("neighbour request failed: {}", std::strerror(-error->error));
        continue;
      }
      if (message->nlmsg_type == RTM_NEWNEIGH || message->nlmsg_type == RTM_DELNEIGH) update(message);
    }
  }
}

void NeighbourCache::update(const nlmsghdr* message) {
  const auto* info = static_cast<const ndmsg*>(mnl_nlmsg_get_payload(message));
  if (info->ndm_ifindex != ifindex_) return;
  std::optional<address> ip;
  std::optional<MacAddress> mac;
  const auto* end = static_cast<const char*>(mnl_nlmsg_get_payload_tail(message));
  for (auto* attribute = static_cast<const nlattr*>(mnl_nlmsg_get_payload_offset(message, sizeof(*info)));
       mnl_attr_ok(attribute, static_cast<int>(end - reinterpret_cast<const char*>(attribute)));
       attribute = mnl_attr_next(attribute)) {
    if (mnl_attr_get_type(attribute) == NDA_DST) ip = address_of(info->ndm_family, attribute);
    if (mnl_attr_get_type(attribute) == NDA_LLADDR && mnl_attr_get_payload_len(attribute) == 6) {
      mac.emplace();
      std::memcpy(mac->data(), mnl_attr_get_payload(attribute), 6);
    }
  }
  if (!ip) return;
  if (message->nlmsg_type == RTM_NEWNEIGH && (info->ndm_state & kUsableStates) && mac)
    macs_[*ip] = *mac;
  else
    macs_.erase(*ip);
}

std::optional<MacAddress> NeighbourCache::lookup(const address& ip) const {
  const auto found = macs_.find(ip);
  if (found == macs_.end()) return std::nullopt;
  return found->second;
}

// NTF_USE makes the kernel start resolution as if it had a packet to send (neigh_event_send).
void NeighbourCache::resolve(const address& ip) {
  const auto now = std::chrono::steady_clock::now();
  auto& last = last_request_[ip];
  if (now - last < std::chrono::seconds(1)) return;
  last = now;
  char buffer[256] = {};
  nlmsghdr* request = mnl_nlmsg_put_header(buffer);
  request->nlmsg_type = RTM_NEWNEIGH;
  request->nlmsg_flags = NLM_F_REQUEST | NLM_F_CREATE | NLM_F_REPLACE;
  request->nlmsg_seq = ++sequence_;
  auto* info = static_cast<ndmsg*>(mnl_nlmsg_put_extra_header(request, sizeof(ndmsg)));
  info->ndm_family = ip.is_v4() ? AF_INET : AF_INET6;
  info->ndm_ifindex = ifindex_;
  info->ndm_flags = NTF_USE;
  if (ip.is_v4()) {
    const auto bytes = ip.to_v4().to_bytes();
    mnl_attr_put(request, NDA_DST, bytes.size(), bytes.data());
  } else {
    const auto bytes = ip.to_v6().to_bytes();
    mnl_attr_put(request, NDA_DST, bytes.size(), bytes.data());
  }
  try {
    send_request(request, request->nlmsg_len);
  } catch (const std::system_error& error) {
    spdlog::warn("resolving {} on the overlay: {}", ip.to_string(), error.what());
  }
}

} // namespace xdpfwd::ingress
