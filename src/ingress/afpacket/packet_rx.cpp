#include "packet_rx.hpp"

#include "xdpfwd/system_error.hpp"

#include <linux/filter.h>
#include <linux/if_ether.h>
#include <sys/socket.h>

#include <array>
#include <string>

namespace xdpfwd::ingress::afpacket {
namespace {

std::string ring_name(int ifindex, std::uint16_t ethertype) {
  const char* protocol = ethertype == ETH_P_IP ? "IPv4" : ethertype == ETH_P_IPV6 ? "IPv6" : "other";
  return std::string("AF_PACKET rx ring for ") + protocol + " on " + interface_name(ifindex);
}

// Accepts the whole packet when skb->mark == mark, nothing otherwise.
void attach_mark_filter(int fd, std::uint32_t mark, const std::string& what) {
  std::array<sock_filter, 4> code = {{
      BPF_STMT(BPF_LD | BPF_W | BPF_ABS, static_cast<std::uint32_t>(SKF_AD_OFF + SKF_AD_MARK)),
      BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, mark, 0, 1),
      BPF_STMT(BPF_RET | BPF_K, 0xffffffffu),
      BPF_STMT(BPF_RET | BPF_K, 0),
  }};
  const sock_fprog program{static_cast<unsigned short>(code.size()), code.data()};
  if (::setsockopt(fd, SOL_SOCKET, SO_ATTACH_FILTER, &program, sizeof program) < 0)
    throw_errno(what + ": SO_ATTACH_FILTER on the mark");
}

} // namespace

PacketRx::PacketRx(int ifindex, std::uint16_t ethertype, std::optional<std::uint32_t> mark, const RingConfig& config)
    : ring_(PacketRing::Kind::Rx, config, ring_name(ifindex, ethertype)) {
  // The filter goes on before bind: an unbound protocol-0 socket has received nothing yet.
  if (mark) attach_mark_filter(ring_.fd(), *mark, ring_.what());
  ring_.bind(ifindex, ethertype);
}

std::size_t PacketRx::receive(std::span<RxFrame> frames) noexcept {
  std::size_t count = 0;
  walked_ = 0;
  while (count < frames.size() && walked_ < ring_.frame_count()) {
    tpacket2_hdr* header = ring_.frame((head_ + walked_) % ring_.frame_count());
    if ((load_status(header) & TP_STATUS_USER) == 0) break;
    ++walked_;
    if (header->tp_snaplen < header->tp_len) { // did not fit the slot: not a frame to forward
      ++truncated_;
      continue;
    }
    auto* data = reinterpret_cast<std::uint8_t*>(header) + header->tp_mac;
    frames[count++] = {data, header->tp_snaplen, ring_.frame_size() - header->tp_mac};
  }
  return count;
}

void PacketRx::release() noexcept {
  for (std::uint32_t i = 0; i < walked_; ++i) store_status(ring_.frame((head_ + i) % ring_.frame_count()), TP_STATUS_KERNEL);
  head_ = (head_ + walked_) % ring_.frame_count();
  walked_ = 0;
}

PacketRx::Statistics PacketRx::statistics() noexcept {
  tpacket_stats stats{};
  socklen_t length = sizeof stats;
  if (::getsockopt(ring_.fd(), SOL_PACKET, PACKET_STATISTICS, &stats, &length) == 0) {
    totals_.packets += stats.tp_packets;
    totals_.drops += stats.tp_drops;
  }
  return totals_;
}

} // namespace xdpfwd::ingress::afpacket
