// xdpfwd-bench: the measuring half of bench/run (the topology and the kernel paths are bench/run's).
//
//   xdpfwd-bench cost [--services N] [--repeat R] [--reps K]
//       BPF_PROG_TEST_RUN cost in ns per packet of xdpfwd's host program (hit and miss), of the
//       minimal redirect and of a bare count-and-drop, with N services in the maps; prints map
//       memory. Runs in the current network namespace (bench/run gives it a private one).
//
//   xdpfwd-bench gen --client NS --dst-ip IP [--dst-mac-of NS/DEV] [--flows N|new] [--seconds S]
//                    [--reps K] [--warmup S] [--cpu C] [--probe NS/DEV]... [--node NS --path P]
//                    [--services N] [--rate PPS] [--engine live|af_packet]
//       The live-frames generator: BPF_PROG_RUN with BPF_F_TEST_XDP_LIVE_FRAMES of bench_gen on
//       NS's eth0 (XDP_TX: out of that veth into its peer), 60-byte UDP frames; where the kernel
//       refuses live frames (EPERM), or with --engine af_packet, the same frames from an AF_PACKET
//       TX ring on that eth0 (packet_gen.hpp). The RESULT line names the engine. Deliveries are
//       counted by bench_count_udp attached to each probe (UDP to the generator's port counted
//       and dropped, everything else passed). With --node, first attaches the host path P to the
//       node's eth0: xdpfwd (its real program, services map filled for the ingress veth xf-in),
//       redirect (the minimal redirect), drop (count and drop on arrival: itself the probe),
//       kernel (count and pass: the host stack does the rest, set up by bench/run).
//       --rate: at most PPS frames per second (slices of a millisecond's frames, then a sleep);
//       without it as fast as the core goes.
//
//   xdpfwd-bench rr --dst IP --port P [--tcp] [--rate R] [--seconds S]
//       Request/response latency at a fixed rate over one flow: UDP datagrams to an echo server,
//       or HTTP/1.1 keep-alive GETs; prints p50/p90/p99/p999 in microseconds and losses.
//
// Output: one "RESULT key=value ..." line per measurement, parsed by bench/run.
// Every XDP program it attaches is detached when it ends; all loops are bounded in time.
#include "bench_abi.h"
#include "bench_gen_bpf.skel.h"
#include "bench_ref_bpf.skel.h"
#include "packet_gen.hpp"
#include "xdpfwd_abi.h"
#include "xdpfwd_bpf.skel.h"

#include <arpa/inet.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <fcntl.h>
#include <linux/if_link.h>
#include <net/if.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sched.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <system_error>
#include <thread>
#include <utility>
#include <vector>

namespace {

using Clock = std::chrono::steady_clock;
using Mac = std::array<std::uint8_t, 6>;

[[noreturn]] void throw_errno(const std::string& what, int error = errno) {
  throw std::system_error(error, std::generic_category(), what);
}

void check(int result, const std::string& what) {
  if (result < 0) throw_errno(what, result == -1 ? errno : -result);
}

// The machine's CPU time not spent busy so far, in clock ticks (/proc/stat: idle, iowait, steal).
// Busy time is what is left of the wall clock: the idle figure is exact (NO_HZ measures each
// idle period), while user/system/softirq are sampled at the tick (HZ=250 here) and charge a whole
// tick to whatever runs at that moment, which overstates a process that wakes briefly and often
// (seen: 2.0 cores "busy" at 80,000 pps where wall clock minus idle, an upper bound, gave 0.93).
std::uint64_t not_busy_ticks() {
  std::ifstream stat("/proc/stat");
  std::string cpu;
  std::uint64_t user = 0, nice = 0, system = 0, idle = 0, iowait = 0, irq = 0, softirq = 0, steal = 0;
  if (!(stat >> cpu >> user >> nice >> system >> idle >> iowait >> irq >> softirq >> steal) || cpu != "cpu")
    throw std::runtime_error("cannot read /proc/stat");
  return idle + iowait + steal; // steal: the hypervisor's, not ours
}

double seconds_since(Clock::time_point start) {
  return std::chrono::duration<double>(Clock::now() - start).count();
}

// --- file descriptors and network namespaces ---------------------------------------------------

class Fd {
public:
  Fd() = default;
  explicit Fd(int fd) : fd_(fd) {}
  Fd(Fd&& other) noexcept : fd_(std::exchange(other.fd_, -1)) {}
  Fd& operator=(Fd&& other) noexcept {
    if (this != &other) {
      reset();
      fd_ = std::exchange(other.fd_, -1);
    }
    return *this;
  }
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  ~Fd() { reset(); }
  int get() const { return fd_; }
  void reset() {
    if (fd_ >= 0) ::close(fd_);
    fd_ = -1;
  }

private:
  int fd_ = -1;
};

// A named network namespace (/run/netns/NAME); enter() switches this single-threaded process.
class Netns {
public:
  explicit Netns(std::string name) : name_(std::move(name)) {
    fd_ = Fd(::open(("/run/netns/" + name_).c_str(), O_RDONLY | O_CLOEXEC));
    if (fd_.get() < 0) throw_errno("open netns " + name_);
  }
  void enter() const {
    if (::setns(fd_.get(), CLONE_NEWNET) < 0) throw_errno("enter netns " + name_);
  }
  const std::string& name() const { return name_; }

private:
  std::string name_;
  Fd fd_;
};

// The namespace this process started in, to come back to.
Fd original_netns() {
  Fd fd(::open("/proc/self/ns/net", O_RDONLY | O_CLOEXEC));
  if (fd.get() < 0) throw_errno("open /proc/self/ns/net");
  return fd;
}

int ifindex_of(const std::string& dev) {
  const int ifindex = static_cast<int>(::if_nametoindex(dev.c_str()));
  if (ifindex == 0) throw_errno("interface " + dev);
  return ifindex;
}

// In the current netns (not through /sys, which nsenter --net does not remount).
Mac mac_of(const std::string& dev) {
  Fd sock(::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0));
  if (sock.get() < 0) throw_errno("socket");
  ifreq request{};
  std::strncpy(request.ifr_name, dev.c_str(), IFNAMSIZ - 1);
  if (::ioctl(sock.get(), SIOCGIFHWADDR, &request) < 0) throw_errno("MAC address of " + dev);
  Mac mac;
  std::memcpy(mac.data(), request.ifr_hwaddr.sa_data, mac.size());
  return mac;
}

std::uint32_t parse_ipv4(const std::string& text) { // host byte order
  in_addr address{};
  if (::inet_pton(AF_INET, text.c_str(), &address) != 1) throw std::invalid_argument("not an IPv4 address: " + text);
  return ntohl(address.s_addr);
}

// --- BPF objects -------------------------------------------------------------------------------

template <typename Skel, void (*Destroy)(Skel*)>
struct SkelDeleter {
  void operator()(Skel* skel) const { Destroy(skel); }
};
using GenSkel = std::unique_ptr<bench_gen_bpf, SkelDeleter<bench_gen_bpf, bench_gen_bpf__destroy>>;
using RefSkel = std::unique_ptr<bench_ref_bpf, SkelDeleter<bench_ref_bpf, bench_ref_bpf__destroy>>;
using FwdSkel = std::unique_ptr<xdpfwd_bpf, SkelDeleter<xdpfwd_bpf, xdpfwd_bpf__destroy>>;

RefSkel load_ref() {
  RefSkel skel(bench_ref_bpf__open_and_load());
  if (!skel) throw_errno("load bench_ref_bpf");
  return skel;
}

// An XDP program attached to an interface of some netns, detached (in that netns) on destruction.
class XdpAttachment {
public:
  XdpAttachment(std::shared_ptr<Netns> netns, std::string dev, int prog_fd) : netns_(std::move(netns)), dev_(std::move(dev)) {
    netns_->enter();
    ifindex_ = ifindex_of(dev_);
    // Native mode: the mode xdpfwd uses on a veth, and the only one XDP_TX/redirect into a veth needs.
    check(bpf_xdp_attach(ifindex_, prog_fd, XDP_FLAGS_DRV_MODE | XDP_FLAGS_UPDATE_IF_NOEXIST, nullptr),
          "attach XDP to " + netns_->name() + "/" + dev_);
  }
  XdpAttachment(const XdpAttachment&) = delete;
  XdpAttachment& operator=(const XdpAttachment&) = delete;
  ~XdpAttachment() {
    try {
      netns_->enter();
      bpf_xdp_detach(ifindex_, XDP_FLAGS_DRV_MODE, nullptr);
    } catch (const std::exception& error) {
      std::fprintf(stderr, "xdpfwd-bench: detach from %s/%s: %s\n", netns_->name().c_str(), dev_.c_str(), error.what());
    }
  }

private:
  std::shared_ptr<Netns> netns_;
  std::string dev_;
  int ifindex_ = 0;
};

// Sum over CPUs of a per-CPU __u64 slot.
std::uint64_t percpu_sum(int map_fd, std::uint32_t key = 0) {
  std::vector<std::uint64_t> values(static_cast<std::size_t>(libbpf_num_possible_cpus()));
  check(bpf_map_lookup_elem(map_fd, &key, values.data()), "read a per-CPU counter");
  std::uint64_t sum = 0;
  for (const auto value : values) sum += value;
  return sum;
}

// Kernel-accounted memory of a map (memlock in its fdinfo), in bytes.
std::uint64_t map_memory(int map_fd) {
  std::ifstream info("/proc/self/fdinfo/" + std::to_string(map_fd));
  std::string key;
  std::uint64_t value = 0;
  while (info >> key) {
    if (key == "memlock:") {
      info >> value;
      return value;
    }
  }
  return 0;
}

xdpfwd_service_key service_key(std::uint32_t ipv4) { // host byte order in
  xdpfwd_service_key key{};
  key.addr[10] = 0xff;
  key.addr[11] = 0xff;
  const std::uint32_t network = htonl(ipv4);
  std::memcpy(&key.addr[12], &network, 4);
  return key;
}

// Extra services that no frame of the bench is sent to: 198.19.128.0 and up.
constexpr std::uint32_t kFillerBase = (198u << 24) | (19u << 16) | (128u << 8);

// xdpfwd's host program, its maps filled as the daemon fills them: `services` service IPs (one of
// them `service_ip`) towards the veth `ifindex` with the MACs given. The services map is enlarged
// when `services` exceeds the object's default (XDPFWD_MAX_SERVICE_IPS).
FwdSkel load_xdpfwd(std::uint32_t service_ip, std::uint32_t services, int ifindex, const Mac& dst, const Mac& src) {
  FwdSkel skel(xdpfwd_bpf__open());
  if (!skel) throw_errno("open xdpfwd_bpf");
  if (services > XDPFWD_MAX_SERVICE_IPS) {
    check(bpf_map__set_max_entries(skel->maps.services, services), "size the services map");
    check(bpf_map__set_max_entries(skel->maps.service_stats, services), "size service_stats");
  }
  check(xdpfwd_bpf__load(skel.get()), "load xdpfwd_bpf");
  xdpfwd_service_value value{};
  value.ifindex = static_cast<__u32>(ifindex);
  std::memcpy(value.dst_mac, dst.data(), 6);
  std::memcpy(value.src_mac, src.data(), 6);
  for (std::uint32_t i = 0; i < services; ++i) {
    const auto key = service_key(i == 0 ? service_ip : kFillerBase + i);
    value.stats_index = i;
    check(bpf_map_update_elem(bpf_map__fd(skel->maps.services), &key, &value, BPF_NOEXIST), "fill services");
  }
  const __u32 dev_key = static_cast<__u32>(ifindex);
  bpf_devmap_val dev{};
  dev.ifindex = dev_key;
  check(bpf_map_update_elem(bpf_map__fd(skel->maps.ingress_devs), &dev_key, &dev, BPF_ANY), "fill ingress_devs");
  return skel;
}

// The minimal redirect with the same destinations.
RefSkel load_redirect(std::uint32_t service_ip, std::uint32_t services, int ifindex, const Mac& dst, const Mac& src) {
  RefSkel skel(bench_ref_bpf__open());
  if (!skel) throw_errno("open bench_ref_bpf");
  if (services > BENCH_MAX_DESTS) check(bpf_map__set_max_entries(skel->maps.dests, services), "size dests");
  check(bench_ref_bpf__load(skel.get()), "load bench_ref_bpf");
  bench_dest value{};
  value.ifindex = static_cast<__u32>(ifindex);
  std::memcpy(value.dst_mac, dst.data(), 6);
  std::memcpy(value.src_mac, src.data(), 6);
  for (std::uint32_t i = 0; i < services; ++i) {
    const __u32 key = htonl(i == 0 ? service_ip : kFillerBase + i);
    check(bpf_map_update_elem(bpf_map__fd(skel->maps.dests), &key, &value, BPF_NOEXIST), "fill dests");
  }
  const __u32 dev_key = static_cast<__u32>(ifindex);
  bpf_devmap_val dev{};
  dev.ifindex = dev_key;
  check(bpf_map_update_elem(bpf_map__fd(skel->maps.devs), &dev_key, &dev, BPF_ANY), "fill devs");
  return skel;
}

// --- options -----------------------------------------------------------------------------------

struct Args {
  std::multimap<std::string, std::string> values;
  std::string get(const std::string& key, const std::string& fallback = "") const {
    const auto found = values.find(key);
    return found == values.end() ? fallback : found->second;
  }
  std::string need(const std::string& key) const {
    const auto found = values.find(key);
    if (found == values.end()) throw std::invalid_argument("--" + key + " is needed");
    return found->second;
  }
  std::vector<std::string> all(const std::string& key) const {
    std::vector<std::string> found;
    for (auto [it, end] = values.equal_range(key); it != end; ++it) found.push_back(it->second);
    return found;
  }
  bool has(const std::string& key) const { return values.count(key) != 0; }
  double number(const std::string& key, double fallback) const {
    const auto found = values.find(key);
    return found == values.end() ? fallback : std::stod(found->second);
  }
};

Args parse_args(int argc, char** argv, int first, const std::vector<std::string>& flags) {
  Args args;
  for (int i = first; i < argc; ++i) {
    std::string arg = argv[i];
    if (!arg.starts_with("--")) throw std::invalid_argument("unexpected argument " + arg);
    arg = arg.substr(2);
    if (std::find(flags.begin(), flags.end(), arg) != flags.end()) {
      args.values.emplace(arg, "1");
      continue;
    }
    if (i + 1 >= argc) throw std::invalid_argument("--" + arg + " needs a value");
    args.values.emplace(arg, argv[++i]);
  }
  return args;
}

// --- cost: BPF_PROG_TEST_RUN -------------------------------------------------------------------

std::vector<std::uint8_t> udp_frame(std::uint32_t src, std::uint32_t dst) {
  std::vector<std::uint8_t> frame(BENCH_FRAME_LEN, 0);
  const Mac dmac{0x02, 0, 0, 0, 0, 1}, smac{0x02, 0, 0, 0, 0, 2};
  std::memcpy(&frame[0], dmac.data(), 6);
  std::memcpy(&frame[6], smac.data(), 6);
  frame[12] = 0x08;
  frame[13] = 0x00;
  std::uint8_t* ip = &frame[14];
  ip[0] = 0x45;
  const std::uint16_t total = htons(BENCH_FRAME_LEN - 14);
  std::memcpy(ip + 2, &total, 2);
  ip[8] = 64;
  ip[9] = IPPROTO_UDP;
  const std::uint32_t s = htonl(src), d = htonl(dst);
  std::memcpy(ip + 12, &s, 4);
  std::memcpy(ip + 16, &d, 4);
  std::uint32_t sum = 0;
  for (int i = 0; i < 20; i += 2) sum += static_cast<std::uint32_t>(ip[i] << 8 | ip[i + 1]);
  while (sum >> 16) sum = (sum & 0xffff) + (sum >> 16);
  const std::uint16_t csum = htons(static_cast<std::uint16_t>(~sum));
  std::memcpy(ip + 10, &csum, 2);
  std::uint8_t* udp = ip + 20;
  const std::uint16_t sport = htons(40000), dport = htons(9), len = htons(BENCH_FRAME_LEN - 34);
  std::memcpy(udp, &sport, 2);
  std::memcpy(udp + 2, &dport, 2);
  std::memcpy(udp + 4, &len, 2);
  return frame;
}

// ns per run of the program on the frame, as the kernel times BPF_PROG_TEST_RUN's loop.
double test_run_ns(int prog_fd, std::vector<std::uint8_t> frame, std::uint32_t repeat, std::uint32_t expected) {
  LIBBPF_OPTS(bpf_test_run_opts, opts, .data_in = frame.data(), .data_size_in = static_cast<__u32>(frame.size()),
              .repeat = static_cast<int>(repeat));
  check(bpf_prog_test_run_opts(prog_fd, &opts), "BPF_PROG_TEST_RUN");
  if (opts.retval != expected)
    throw std::runtime_error("unexpected verdict " + std::to_string(opts.retval) + " (wanted " + std::to_string(expected) + ")");
  return opts.duration; // the kernel reports the mean per repetition, in ns
}

int cmd_cost(const Args& args) {
  const auto services = static_cast<std::uint32_t>(args.number("services", 1));
  const auto repeat = static_cast<std::uint32_t>(args.number("repeat", 5e6));
  const int reps = static_cast<int>(args.number("reps", 3));
  const std::uint32_t service_ip = parse_ipv4("198.18.0.10"), client = parse_ipv4("198.18.1.2");
  const std::uint32_t other = parse_ipv4("198.18.1.1");
  // Any interface will do for the devmaps: test runs without live frames never transmit.
  const int lo = ifindex_of("lo");
  const Mac dst{0x02, 0, 0, 0, 0, 3}, src{0x02, 0, 0, 0, 0, 4};

  FwdSkel fwd = load_xdpfwd(service_ip, services, lo, dst, src);
  RefSkel redirect = load_redirect(service_ip, services, lo, dst, src);
  const int fwd_prog = bpf_program__fd(fwd->progs.xdpfwd_xdp);
  const int redirect_prog = bpf_program__fd(redirect->progs.bench_redirect);
  const int drop_prog = bpf_program__fd(redirect->progs.bench_count_drop);
  const auto hit = udp_frame(client, service_ip), miss = udp_frame(client, other);
  // The service in the middle of the filled map, not only the first one in.
  const auto hit_last = udp_frame(client, services > 1 ? kFillerBase + services - 1 : service_ip);

  for (int rep = 1; rep <= reps; ++rep) {
    const auto emit = [&](const char* row, double ns) {
      std::printf("RESULT row=%s services=%u rep=%d ns=%.2f\n", row, services, rep, ns);
    };
    emit("xdpfwd-hit", test_run_ns(fwd_prog, hit, repeat, XDP_REDIRECT));
    emit("xdpfwd-hit-last", test_run_ns(fwd_prog, hit_last, repeat, XDP_REDIRECT));
    emit("xdpfwd-miss", test_run_ns(fwd_prog, miss, repeat, XDP_PASS));
    emit("redirect-hit", test_run_ns(redirect_prog, hit, repeat, XDP_REDIRECT));
    emit("redirect-miss", test_run_ns(redirect_prog, miss, repeat, XDP_PASS));
    emit("drop", test_run_ns(drop_prog, hit, repeat, XDP_DROP));
    std::fflush(stdout);
  }
  std::uint64_t fwd_bytes = 0;
  bpf_map* map;
  bpf_object__for_each_map(map, fwd->obj) fwd_bytes += map_memory(bpf_map__fd(map));
  std::printf("RESULT row=xdpfwd-maps services=%u bytes=%llu services_map=%llu\n", services,
              static_cast<unsigned long long>(fwd_bytes),
              static_cast<unsigned long long>(map_memory(bpf_map__fd(fwd->maps.services))));
  return 0;
}

// --- gen: the live-frames generator --------------------------------------------------------------

// A delivery probe: bench_count_udp of its own skeleton instance (so its own counter).
struct Probe {
  RefSkel skel;
  std::unique_ptr<XdpAttachment> attachment;
  int counter_fd() const { return bpf_map__fd(skel->maps.frames); }
};

std::pair<std::string, std::string> split_ns_dev(const std::string& text) {
  const auto slash = text.find('/');
  if (slash == std::string::npos) throw std::invalid_argument("expected NETNS/DEV, got " + text);
  return {text.substr(0, slash), text.substr(slash + 1)};
}

int cmd_gen(const Args& args) {
  const Fd home = original_netns();
  const auto client = std::make_shared<Netns>(args.need("client"));
  const std::uint32_t dst_ip = parse_ipv4(args.need("dst-ip"));
  const auto dst_port = static_cast<std::uint16_t>(args.number("dst-port", 9));
  const std::string flows_text = args.get("flows", "1");
  const std::uint32_t flows = flows_text == "new" ? 0 : static_cast<std::uint32_t>(std::stoul(flows_text));
  const double seconds = args.number("seconds", 2), warmup = args.number("warmup", 0.5);
  const int reps = static_cast<int>(args.number("reps", 1));
  const auto services = static_cast<std::uint32_t>(args.number("services", 1));
  const std::string path = args.get("path", "none");
  std::vector<std::unique_ptr<XdpAttachment>> attachments;
  std::vector<Probe> probes;

  for (const auto& text : args.all("probe")) {
    const auto [ns, dev] = split_ns_dev(text);
    Probe probe{load_ref(), nullptr};
    probe.attachment = std::make_unique<XdpAttachment>(std::make_shared<Netns>(ns), dev,
                                                       bpf_program__fd(probe.skel->progs.bench_count_udp));
    probes.push_back(std::move(probe));
  }

  // The host path on the node's NIC (eth0), towards xf-in whose peer is the ingress's eth0.
  FwdSkel fwd;
  RefSkel node_ref;
  if (path != "none") {
    const auto node = std::make_shared<Netns>(args.need("node"));
    Mac ingress_mac{};
    if (path == "xdpfwd" || path == "redirect") {
      Netns(args.need("ingress")).enter();
      ingress_mac = mac_of("eth0");
    }
    node->enter();
    int prog_fd;
    if (path == "xdpfwd") {
      fwd = load_xdpfwd(dst_ip, services, ifindex_of("xf-in"), ingress_mac, mac_of("xf-in"));
      prog_fd = bpf_program__fd(fwd->progs.xdpfwd_xdp);
    } else if (path == "redirect") {
      node_ref = load_redirect(dst_ip, services, ifindex_of("xf-in"), ingress_mac, mac_of("xf-in"));
      prog_fd = bpf_program__fd(node_ref->progs.bench_redirect);
    } else if (path == "drop") {
      node_ref = load_ref();
      prog_fd = bpf_program__fd(node_ref->progs.bench_count_drop);
    } else if (path == "kernel") {
      node_ref = load_ref();
      prog_fd = bpf_program__fd(node_ref->progs.bench_count_pass);
    } else {
      throw std::invalid_argument("unknown --path " + path);
    }
    attachments.push_back(std::make_unique<XdpAttachment>(node, "eth0", prog_fd));
  }
  // What counts as delivered: the probes, or for "drop" the node's own counter.
  std::vector<int> counters;
  for (const auto& probe : probes) counters.push_back(probe.counter_fd());
  if (path == "drop") counters.push_back(bpf_map__fd(node_ref->maps.frames));
  if (counters.empty()) throw std::invalid_argument("nothing counts deliveries: give --probe");
  const auto delivered = [&] {
    std::uint64_t sum = 0;
    for (const int fd : counters) sum += percpu_sum(fd);
    return sum;
  };

  // The generator, in the client netns: frames from its eth0 to the MAC of its peer.
  Mac peer_mac;
  if (args.has("dst-mac-of")) {
    const auto [ns, dev] = split_ns_dev(args.get("dst-mac-of"));
    Netns(ns).enter();
    peer_mac = mac_of(dev);
  } else {
    Netns(args.need("node")).enter();
    peer_mac = mac_of("eth0");
  }
  client->enter();
  const int client_ifindex = ifindex_of("eth0");
  const Mac client_mac = mac_of("eth0");
  bench::FrameSpec spec;
  spec.dst_mac = peer_mac;
  spec.src_mac = client_mac;
  spec.src_ip = parse_ipv4(args.get("src-ip", "198.18.1.2"));
  spec.dst_ip = dst_ip;
  spec.src_port = 10000;
  spec.dst_port = dst_port;
  spec.flows = flows;
  GenSkel gen(bench_gen_bpf__open());
  if (!gen) throw_errno("open bench_gen_bpf");
  std::memcpy(const_cast<std::uint8_t*>(gen->rodata->dst_mac), spec.dst_mac.data(), 6);
  std::memcpy(const_cast<std::uint8_t*>(gen->rodata->src_mac), spec.src_mac.data(), 6);
  gen->rodata->src_ip = spec.src_ip;
  gen->rodata->dst_ip = spec.dst_ip;
  gen->rodata->src_port = spec.src_port;
  gen->rodata->dst_port = spec.dst_port;
  gen->rodata->flows = spec.flows;
  check(bench_gen_bpf__load(gen.get()), "load bench_gen_bpf");

  if (args.has("cpu")) {
    cpu_set_t cpus;
    CPU_ZERO(&cpus);
    CPU_SET(static_cast<int>(args.number("cpu", 0)), &cpus);
    check(sched_setaffinity(0, sizeof(cpus), &cpus), "pin to a CPU");
  }
  std::vector<std::uint8_t> frame(BENCH_FRAME_LEN, 0);
  xdp_md ctx{};
  ctx.data_end = BENCH_FRAME_LEN;
  ctx.ingress_ifindex = static_cast<__u32>(client_ifindex);
  const auto run_live = [&](std::uint32_t count) {
    LIBBPF_OPTS(bpf_test_run_opts, opts, .data_in = frame.data(), .data_size_in = BENCH_FRAME_LEN,
                .ctx_in = &ctx, .ctx_size_in = sizeof(ctx), .repeat = static_cast<int>(count),
                .flags = BPF_F_TEST_XDP_LIVE_FRAMES,
                .batch_size = static_cast<__u32>(args.number("batch-size", 64)));
    return bpf_prog_test_run_opts(bpf_program__fd(gen->progs.bench_gen), &opts) < 0 ? -errno : 0;
  };
  // The engine: live frames unless asked otherwise or refused (one frame tells).
  std::string engine = args.get("engine", "live");
  if (engine == "live") {
    if (const int error = run_live(1); error == -EPERM) {
      engine = "af_packet";
      std::fprintf(stderr, "xdpfwd-bench gen: this kernel refuses BPF_F_TEST_XDP_LIVE_FRAMES (EPERM): "
                           "frames come from an AF_PACKET TX ring instead\n");
    } else {
      check(error, "BPF_PROG_RUN live frames");
    }
  } else if (engine != "af_packet") {
    throw std::invalid_argument("unknown --engine " + engine + " (live or af_packet)");
  }
  std::optional<bench::PacketGenerator> packet_engine;
  if (engine == "af_packet") packet_engine.emplace("eth0", spec);

  const double rate = args.number("rate", 0);
  const std::uint32_t batch_repeat =
      rate > 0 ? static_cast<std::uint32_t>(std::max(1.0, rate / 1000)) : static_cast<std::uint32_t>(args.number("batch", 1 << 16));
  const auto send_for = [&](double duration) {
    std::uint64_t sent = 0;
    const auto start = Clock::now();
    while (seconds_since(start) < duration) {
      if (rate > 0) // the next slice when its time comes
        std::this_thread::sleep_until(start + std::chrono::duration_cast<Clock::duration>(
                                                  std::chrono::duration<double>(static_cast<double>(sent) / rate)));
      if (packet_engine)
        packet_engine->send(batch_repeat);
      else
        check(run_live(batch_repeat), "BPF_PROG_RUN live frames");
      sent += batch_repeat;
    }
    return sent;
  };

  send_for(warmup); // conntrack entries of established flows, ARP, page pools
  for (int rep = 1; rep <= reps; ++rep) {
    const std::uint64_t before = delivered(), not_busy_before = not_busy_ticks();
    const auto start = Clock::now();
    const std::uint64_t sent = send_for(seconds);
    const double elapsed = seconds_since(start);
    const std::uint64_t after = delivered(), not_busy_after = not_busy_ticks();
    // CPUs busy meanwhile, the whole machine's (other users' load included).
    const double not_busy = static_cast<double>(not_busy_after - not_busy_before) / static_cast<double>(::sysconf(_SC_CLK_TCK));
    const double busy_cores = std::max(0.0, static_cast<double>(::sysconf(_SC_NPROCESSORS_ONLN)) - not_busy / elapsed);
    std::printf("RESULT path=%s flows=%s services=%u rep=%d pps=%.0f sent_pps=%.0f seconds=%.3f busy_cores=%.2f "
                "engine=%s\n",
                path.c_str(), flows_text.c_str(), services, rep, (after - before) / elapsed, sent / elapsed, elapsed,
                busy_cores, engine.c_str());
    std::fflush(stdout);
  }
  attachments.clear();
  probes.clear();
  ::setns(home.get(), CLONE_NEWNET);
  return 0;
}

// --- rr: request/response latency ---------------------------------------------------------------

int cmd_rr(const Args& args) {
  const bool tcp = args.has("tcp");
  const std::string dst = args.need("dst");
  const auto port = static_cast<std::uint16_t>(args.number("port", tcp ? 80 : 7));
  const double rate = args.number("rate", 2000), seconds = args.number("seconds", 3);
  const auto timeout = std::chrono::milliseconds(static_cast<int>(args.number("timeout-ms", 200)));
  const std::string label = args.get("label", tcp ? "tcp" : "udp");

  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_port = htons(port);
  address.sin_addr.s_addr = htonl(parse_ipv4(dst));
  Fd sock(::socket(AF_INET, (tcp ? SOCK_STREAM : SOCK_DGRAM) | SOCK_CLOEXEC, 0));
  if (sock.get() < 0) throw_errno("socket");
  if (tcp) {
    const int one = 1;
    ::setsockopt(sock.get(), IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
  }
  if (::connect(sock.get(), reinterpret_cast<const sockaddr*>(&address), sizeof(address)) < 0)
    throw_errno("connect to " + dst + ":" + std::to_string(port));
  const std::string request = tcp ? "GET / HTTP/1.1\r\nHost: bench\r\n\r\n" : "ping";

  // One request in flight: its response (for HTTP, the whole body by Content-Length) or a timeout.
  std::string buffer;
  const auto await_response = [&](Clock::time_point deadline) -> bool {
    char chunk[4096];
    buffer.clear();
    for (;;) {
      const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()).count();
      if (left <= 0) return false;
      pollfd pfd{sock.get(), POLLIN, 0};
      if (::poll(&pfd, 1, static_cast<int>(left)) <= 0) continue;
      const ssize_t got = ::recv(sock.get(), chunk, sizeof(chunk), 0);
      if (got <= 0) {
        if (!tcp && got < 0) continue; // ICMP errors of UDP: a loss, wait for the deadline
        return false;
      }
      if (!tcp) return true;
      buffer.append(chunk, static_cast<std::size_t>(got));
      const auto end = buffer.find("\r\n\r\n");
      if (end == std::string::npos) continue;
      std::size_t length = 0;
      if (const auto at = buffer.find("Content-Length:"); at != std::string::npos && at < end)
        length = std::stoul(buffer.substr(at + 15));
      if (buffer.size() >= end + 4 + length) return true;
    }
  };

  std::vector<double> micros;
  long lost = 0, sent = 0;
  const auto interval = std::chrono::duration<double>(1.0 / rate);
  const auto start = Clock::now();
  for (auto next = start; seconds_since(start) < seconds;) {
    while (Clock::now() < next) {
      const auto wait = next - Clock::now();
      if (wait > std::chrono::microseconds(100)) ::usleep(static_cast<useconds_t>(
          std::chrono::duration_cast<std::chrono::microseconds>(wait).count() - 50));
    }
    const auto sent_at = Clock::now();
    if (::send(sock.get(), request.data(), request.size(), 0) < 0) {
      if (tcp) throw_errno("send");
      ++lost;
    } else if (await_response(sent_at + timeout)) {
      micros.push_back(std::chrono::duration<double, std::micro>(Clock::now() - sent_at).count());
    } else {
      ++lost;
      if (tcp) throw std::runtime_error("no HTTP answer within the timeout");
    }
    ++sent;
    next += std::chrono::duration_cast<Clock::duration>(interval);
  }
  std::sort(micros.begin(), micros.end());
  const auto percentile = [&](double p) {
    if (micros.empty()) return 0.0;
    return micros[std::min(micros.size() - 1, static_cast<std::size_t>(p * static_cast<double>(micros.size())))];
  };
  std::printf("RESULT row=%s sent=%ld answered=%zu lost=%ld p50_us=%.1f p90_us=%.1f p99_us=%.1f p999_us=%.1f\n",
              label.c_str(), sent, micros.size(), lost, percentile(0.5), percentile(0.9), percentile(0.99),
              percentile(0.999));
  return 0;
}

} // namespace

int main(int argc, char** argv) {
  if (argc < 2) {
    std::fprintf(stderr, "usage: xdpfwd-bench cost|gen|rr [--option value]...\n");
    return 2;
  }
  const std::string command = argv[1];
  try {
    if (command == "cost") return cmd_cost(parse_args(argc, argv, 2, {}));
    if (command == "gen") return cmd_gen(parse_args(argc, argv, 2, {}));
    if (command == "rr") return cmd_rr(parse_args(argc, argv, 2, {"tcp"}));
    std::fprintf(stderr, "xdpfwd-bench: unknown command %s\n", command.c_str());
    return 2;
  } catch (const std::exception& error) {
    std::fprintf(stderr, "xdpfwd-bench %s: %s\n", command.c_str(), error.what());
    return 1;
  }
}
