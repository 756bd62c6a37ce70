// Test frames for the ingress packet library: a small builder (Ethernet, one VLAN tag, IPv4 with
// options/fragments, IPv6 with extension headers, TCP, UDP, ICMP/ICMPv6, ICMP errors), and a
// reference checksum oracle written the slow, obvious way (byte pairs, RFC 1071) and with its own
// header walk, so that it shares no code with the library it checks.
#pragma once

#include "ip_addr.hpp"

#include <arpa/inet.h>

#include <cstdint>
#include <cstring>
#include <optional>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

namespace frames {

using Bytes = std::vector<std::uint8_t>;
using xdpfwd::ingress::packet::IpAddr;

inline IpAddr ip(const std::string& text) {
  IpAddr a;
  if (text.find(':') != std::string::npos) {
    a.version = 6;
    if (inet_pton(AF_INET6, text.c_str(), a.bytes.data()) != 1) {
      throw std::invalid_argument(text);
    }
  } else {
    a.version = 4;
    if (inet_pton(AF_INET, text.c_str(), a.bytes.data()) != 1) {
      throw std::invalid_argument(text);
    }
  }
  return a;
}

inline void put16(Bytes& b, std::uint16_t v) {
  b.push_back(static_cast<std::uint8_t>(v >> 8));
  b.push_back(static_cast<std::uint8_t>(v));
}
inline void put32(Bytes& b, std::uint32_t v) {
  put16(b, static_cast<std::uint16_t>(v >> 16));
  put16(b, static_cast<std::uint16_t>(v));
}
inline std::uint16_t get16(const std::uint8_t* p) { return static_cast<std::uint16_t>(p[0] << 8 | p[1]); }
inline void set16(std::uint8_t* p, std::uint16_t v) {
  p[0] = static_cast<std::uint8_t>(v >> 8);
  p[1] = static_cast<std::uint8_t>(v);
}

// ---- reference checksum: big-endian byte pairs into a 32-bit sum, folded at the end ----

inline std::uint32_t ref_sum(const std::uint8_t* p, std::size_t n, std::uint32_t sum = 0) {
  for (std::size_t i = 0; i + 1 < n; i += 2) {
    sum += static_cast<std::uint32_t>(p[i] << 8 | p[i + 1]);
  }
  if (n % 2 == 1) {
    sum += static_cast<std::uint32_t>(p[n - 1] << 8);
  }
  return sum;
}
inline std::uint16_t ref_fold(std::uint32_t sum) {
  while (sum >> 16) {
    sum = (sum & 0xFFFF) + (sum >> 16);
  }
  return static_cast<std::uint16_t>(sum);
}
inline std::uint32_t ref_pseudo(const std::uint8_t* src, const std::uint8_t* dst, int version, std::uint8_t proto,
                                std::uint32_t len) {
  const std::size_t n = version == 4 ? 4 : 16;
  std::uint32_t s = ref_sum(src, n);
  s = ref_sum(dst, n, s);
  s += proto;
  s += len >> 16;
  s += len & 0xFFFF;
  return s;
}
// Checksum of data whose checksum field is at `field` (relative), as a sender computes it.
inline std::uint16_t ref_checksum_with_field_zero(const std::uint8_t* p, std::size_t n, std::size_t field,
                                                  std::uint32_t initial) {
  Bytes copy(p, p + n);
  copy[field] = 0;
  copy[field + 1] = 0;
  return static_cast<std::uint16_t>(~ref_fold(ref_sum(copy.data(), copy.size(), initial)));
}
// 0x0000 and 0xFFFF are the same number in one's complement.
inline bool same_checksum(std::uint16_t a, std::uint16_t b) {
  return a == b || ((a == 0 || a == 0xFFFF) && (b == 0 || b == 0xFFFF));
}

// ---- builder ----

struct ExtHeader {
  std::uint8_t type = 0;  // 0 hop-by-hop, 43 routing, 44 fragment, 60 destination options, other
  std::size_t len = 8;    // total bytes, multiple of 8 (fragment: 8)
  std::uint8_t segments_left = 0; // routing
  std::uint16_t frag_offset = 0;  // fragment, bytes (multiple of 8)
  bool more = false;              // fragment M flag
  std::uint32_t frag_id = 0x01020304;
};

class Builder {
public:
  Builder& ipv4(const std::string& src, const std::string& dst) {
    src_ = ip(src);
    dst_ = ip(dst);
    return *this;
  }
  Builder& ipv6(const std::string& src, const std::string& dst) { return ipv4(src, dst); }
  Builder& vlan(std::uint16_t tci, std::uint16_t tpid = 0x8100) {
    vlans_.push_back({tpid, tci});
    return *this;
  }
  Builder& ethertype(std::uint16_t type) {
    ethertype_ = type;
    return *this;
  }
  Builder& ttl(std::uint8_t t) {
    ttl_ = t;
    return *this;
  }
  Builder& ipv4_options(Bytes options) {
    ipv4_options_ = std::move(options);
    return *this;
  }
  Builder& ipv4_fragment(bool more, std::uint16_t offset_bytes, std::uint16_t id = 0x4242) {
    mf_ = more;
    frag_offset_ = offset_bytes;
    ip_id_ = id;
    return *this;
  }
  Builder& ext(ExtHeader h) {
    ext_.push_back(h);
    return *this;
  }
  Builder& tcp(std::uint16_t sport, std::uint16_t dport, std::uint8_t flags, Bytes options = {}) {
    proto_ = 6;
    l4_.clear();
    put16(l4_, sport);
    put16(l4_, dport);
    put32(l4_, 0x11223344); // seq
    put32(l4_, 0x55667788); // ack
    l4_.push_back(static_cast<std::uint8_t>((20 + options.size()) / 4 << 4));
    l4_.push_back(flags);
    put16(l4_, 65535); // window
    put16(l4_, 0);     // checksum
    put16(l4_, 0);     // urgent
    l4_.insert(l4_.end(), options.begin(), options.end());
    checksum_field_ = 16;
    return *this;
  }
  Builder& udp(std::uint16_t sport, std::uint16_t dport) {
    proto_ = 17;
    l4_.clear();
    put16(l4_, sport);
    put16(l4_, dport);
    put16(l4_, 0); // length, filled by build()
    put16(l4_, 0);
    checksum_field_ = 6;
    udp_ = true;
    return *this;
  }
  // ICMP or ICMPv6 by the address family (set the addresses first).
  Builder& icmp(std::uint8_t type, std::uint8_t code, std::uint16_t id = 0, std::uint16_t seq = 0) {
    proto_ = src_.version == 6 ? 58 : 1;
    l4_.clear();
    l4_.push_back(type);
    l4_.push_back(code);
    put16(l4_, 0);
    put16(l4_, id);
    put16(l4_, seq);
    checksum_field_ = 2;
    return *this;
  }
  // An ICMP error embedding `inner` (an IP packet, usually Builder::ip_packet(), possibly cut).
  Builder& icmp_error(std::uint8_t type, std::uint8_t code, const Bytes& inner, std::uint32_t rest = 0) {
    icmp(type, code);
    l4_.resize(4);
    put32(l4_, rest);
    l4_.insert(l4_.end(), inner.begin(), inner.end());
    return *this;
  }
  // L4 bytes as given, no checksum (non-first fragments, other protocols).
  Builder& raw(std::uint8_t proto, Bytes data) {
    proto_ = proto;
    l4_ = std::move(data);
    checksum_field_.reset();
    return *this;
  }
  Builder& payload(Bytes p) {
    payload_ = std::move(p);
    return *this;
  }
  Builder& payload_size(std::size_t n, std::uint8_t seed = 0) {
    payload_.resize(n);
    for (std::size_t i = 0; i < n; ++i) {
      payload_[i] = static_cast<std::uint8_t>(i * 7 + seed);
    }
    return *this;
  }
  Builder& udp_checksum_zero() {
    udp_zero_ = true;
    return *this;
  }
  // The L4 checksum as a sender with TX checksum offload leaves it (Linux's CHECKSUM_PARTIAL):
  // only the folded pseudo-header sum, for hardware to finish.
  Builder& l4_checksum_partial() {
    l4_partial_ = true;
    return *this;
  }
  Builder& pad_to(std::size_t frame_len) {
    pad_to_ = frame_len;
    return *this;
  }

  // The IP packet (from the IP header to the end of the payload).
  Bytes ip_packet() const {
    Bytes l4 = l4_;
    l4.insert(l4.end(), payload_.begin(), payload_.end());
    if (udp_ && l4.size() >= 8) {
      set16(l4.data() + 4, static_cast<std::uint16_t>(l4.size()));
    }
    if (checksum_field_ && l4.size() >= *checksum_field_ + 2) {
      set16(l4.data() + *checksum_field_, 0);
      const bool icmpv4 = proto_ == 1 && src_.version == 4;
      const std::uint32_t pseudo =
          icmpv4 ? 0 : ref_pseudo(src_.bytes.data(), dst_.bytes.data(), src_.version, proto_,
                                  static_cast<std::uint32_t>(l4.size()));
      std::uint16_t c = static_cast<std::uint16_t>(~ref_fold(ref_sum(l4.data(), l4.size(), pseudo)));
      if (udp_ && c == 0) {
        c = 0xFFFF;
      }
      if (udp_ && udp_zero_) {
        c = 0;
      }
      if (l4_partial_) {
        c = ref_fold(pseudo);
      }
      set16(l4.data() + *checksum_field_, c);
    }
    Bytes out;
    if (src_.version == 4) {
      const std::size_t ihl = 20 + ipv4_options_.size();
      out.push_back(static_cast<std::uint8_t>(0x40 | ihl / 4));
      out.push_back(0);
      put16(out, static_cast<std::uint16_t>(ihl + l4.size()));
      put16(out, ip_id_);
      put16(out, static_cast<std::uint16_t>((mf_ ? 0x2000 : 0) | (frag_offset_ / 8)));
      out.push_back(ttl_);
      out.push_back(proto_);
      put16(out, 0);
      out.insert(out.end(), src_.bytes.begin(), src_.bytes.begin() + 4);
      out.insert(out.end(), dst_.bytes.begin(), dst_.bytes.begin() + 4);
      out.insert(out.end(), ipv4_options_.begin(), ipv4_options_.end());
      set16(out.data() + 10, static_cast<std::uint16_t>(~ref_fold(ref_sum(out.data(), ihl))));
    } else {
      Bytes exts;
      for (std::size_t i = 0; i < ext_.size(); ++i) {
        const ExtHeader& h = ext_[i];
        const std::uint8_t next = i + 1 < ext_.size() ? ext_[i + 1].type : proto_;
        const std::size_t start = exts.size();
        if (h.type == 44) {
          exts.push_back(next);
          exts.push_back(0);
          put16(exts, static_cast<std::uint16_t>(h.frag_offset | (h.more ? 1 : 0)));
          put32(exts, h.frag_id);
          continue;
        }
        exts.resize(start + h.len, 0);
        exts[start] = next;
        exts[start + 1] = static_cast<std::uint8_t>(h.len / 8 - 1);
        if (h.type == 43) {
          exts[start + 2] = 4; // segment routing type, irrelevant here
          exts[start + 3] = h.segments_left;
        } else {
          exts[start + 2] = 1; // PadN
          exts[start + 3] = static_cast<std::uint8_t>(h.len - 4);
        }
      }
      out.push_back(0x60);
      out.push_back(0);
      put16(out, 0);
      put16(out, static_cast<std::uint16_t>(exts.size() + l4.size()));
      out.push_back(ext_.empty() ? proto_ : ext_[0].type);
      out.push_back(ttl_);
      out.insert(out.end(), src_.bytes.begin(), src_.bytes.end());
      out.insert(out.end(), dst_.bytes.begin(), dst_.bytes.end());
      out.insert(out.end(), exts.begin(), exts.end());
    }
    out.insert(out.end(), l4.begin(), l4.end());
    return out;
  }

  Bytes build() const {
    Bytes f = {0x02, 0, 0, 0, 0, 0x01, 0x02, 0, 0, 0, 0, 0x02};
    for (const auto& [tpid, tci] : vlans_) {
      put16(f, tpid);
      put16(f, tci);
    }
    put16(f, ethertype_ ? *ethertype_ : (src_.version == 6 ? 0x86DD : 0x0800));
    const Bytes p = ip_packet();
    f.insert(f.end(), p.begin(), p.end());
    if (f.size() < pad_to_) {
      f.resize(pad_to_, 0);
    }
    return f;
  }

private:
  IpAddr src_ = ip("198.51.100.7");
  IpAddr dst_ = ip("198.18.0.10");
  std::vector<std::pair<std::uint16_t, std::uint16_t>> vlans_;
  std::optional<std::uint16_t> ethertype_;
  std::uint8_t ttl_ = 64;
  std::uint16_t ip_id_ = 0x1234;
  bool mf_ = false;
  std::uint16_t frag_offset_ = 0;
  Bytes ipv4_options_;
  std::vector<ExtHeader> ext_;
  std::uint8_t proto_ = 17;
  Bytes l4_;
  Bytes payload_;
  std::optional<std::size_t> checksum_field_;
  bool udp_ = false;
  bool udp_zero_ = false;
  bool l4_partial_ = false;
  std::size_t pad_to_ = 0;
};

// ---- reference oracle ----

// Where things are, found without the library (IPv4 options, IPv6 hop/dest/routing/fragment).
struct RefLayout {
  int version = 0;
  std::size_t l3 = 0;
  std::size_t l4 = 0;
  std::size_t end = 0;
  std::uint8_t proto = 0;
  bool fragment = false; // the L4 checksum covers the reassembled packet: not checkable here
};

inline RefLayout ref_layout(const std::uint8_t* f, std::size_t l3, std::size_t avail_end) {
  RefLayout r;
  r.l3 = l3;
  r.version = f[l3] >> 4;
  if (r.version == 4) {
    r.l4 = l3 + (f[l3] & 0x0F) * 4u;
    r.end = std::min<std::size_t>(l3 + get16(f + l3 + 2), avail_end);
    r.proto = f[l3 + 9];
    r.fragment = (get16(f + l3 + 6) & 0x3FFF) != 0;
  } else {
    r.end = std::min<std::size_t>(l3 + 40 + get16(f + l3 + 4), avail_end);
    std::uint8_t next = f[l3 + 6];
    std::size_t off = l3 + 40;
    while (next == 0 || next == 43 || next == 60 || next == 44) {
      const std::size_t len = next == 44 ? 8 : (f[off + 1] + 1u) * 8;
      if (next == 44 && get16(f + off + 2) != 0) {
        r.fragment = true;
      }
      next = f[off];
      off += len;
    }
    r.l4 = off;
    r.proto = next;
  }
  return r;
}

struct RefChecks {
  bool ipv4_header = true;
  bool l4 = true;
  bool inner_ipv4_header = true;
  bool inner_l4 = true; // only checked when the embedded packet is complete
};

// The L4 checksum field offset (relative to L4) of a protocol, or -1.
inline int ref_field(int version, std::uint8_t proto) {
  if (proto == 6) return 16;
  if (proto == 17) return 6;
  if ((version == 4 && proto == 1) || (version == 6 && proto == 58)) return 2;
  return -1;
}

inline bool ref_l4_ok(const std::uint8_t* f, const RefLayout& r) {
  const int field = ref_field(r.version, r.proto);
  if (field < 0 || r.fragment) {
    return true;
  }
  const std::uint16_t stored = get16(f + r.l4 + field);
  if (r.proto == 17 && stored == 0) {
    return r.version == 4;
  }
  const bool icmpv4 = r.version == 4 && r.proto == 1;
  const std::size_t src = r.l3 + (r.version == 4 ? 12 : 8);
  const std::size_t dst = r.l3 + (r.version == 4 ? 16 : 24);
  const std::uint32_t pseudo =
      icmpv4 ? 0 : ref_pseudo(f + src, f + dst, r.version, r.proto, static_cast<std::uint32_t>(r.end - r.l4));
  return same_checksum(stored, ref_checksum_with_field_zero(f + r.l4, r.end - r.l4, field, pseudo));
}

// Full recomputation of every checksum in a frame: IPv4 header, L4, and for ICMP errors the
// embedded IPv4 header and (when the embedded packet is complete) the embedded L4 checksum.
inline RefChecks ref_verify(const Bytes& frame) {
  RefChecks c;
  const std::uint8_t* f = frame.data();
  std::size_t l3 = 14;
  while (get16(f + l3 - 2) == 0x8100 || get16(f + l3 - 2) == 0x88A8) {
    l3 += 4;
  }
  const RefLayout r = ref_layout(f, l3, frame.size());
  if (r.version == 4) {
    c.ipv4_header = ref_fold(ref_sum(f + l3, r.l4 - l3)) == 0xFFFF;
  }
  c.l4 = ref_l4_ok(f, r);
  const bool icmp = (r.version == 4 && r.proto == 1) || (r.version == 6 && r.proto == 58);
  const std::uint8_t type = f[r.l4];
  const bool error = icmp && (r.version == 4 ? (type == 3 || type == 11 || type == 12) : (type >= 1 && type <= 4));
  if (error) {
    const RefLayout in = ref_layout(f, r.l4 + 8, r.end);
    if (in.version == 4) {
      c.inner_ipv4_header = ref_fold(ref_sum(f + in.l3, in.l4 - in.l3)) == 0xFFFF;
    }
    const std::size_t declared =
        in.version == 4 ? in.l3 + get16(f + in.l3 + 2) : in.l3 + 40 + get16(f + in.l3 + 4);
    if (declared == r.end) { // complete: its L4 checksum can be recomputed
      c.inner_l4 = ref_l4_ok(f, in);
    }
  }
  return c;
}

} // namespace frames
