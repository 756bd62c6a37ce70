// HostXdp against real kernel objects: pinned maps adopted, upgraded when an earlier xdpfwd left
// them with another layout, and put back when a start is undone. Needs root (CAP_BPF,
// CAP_NET_ADMIN, CAP_SYS_ADMIN for unshare).
//
// The whole process first moves into a network namespace of its own (unshare): the only
// interfaces it attaches to are a veth pair it creates there, and no interface of the machine
// can even be named. Pins go to /sys/fs/bpf/xdpfwd-test-<pid>, libxdp's to a directory of the
// same kind; both are removed after every test, failed or not.
#include "host_xdp.hpp"
#include "ingress_pass_bpf.skel.h"
#include "xdpfwd/log.hpp"
#include "xdpfwd/netlink.hpp"
#include "xdpfwd/unique_fd.hpp"
#include "xdpfwd/xdp_maps.hpp"
#include "xdpfwd_bpf.skel.h"

#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <linux/if_link.h>
#include <linux/magic.h>
#include <net/if.h>
#include <sched.h>
#include <spdlog/sinks/ostream_sink.h>
#include <spdlog/sinks/stdout_sinks.h>
#include <spdlog/spdlog.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <unistd.h>

#include <cstring>
#include <filesystem>
#include <map>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

namespace xdpfwd::testing {
namespace {

namespace fs = std::filesystem;

const fs::path kBpffs = "/sys/fs/bpf";
const std::string kTestName = "xdpfwd-test-" + std::to_string(::getpid());

std::uint64_t netns_inode() {
  struct stat info {};
  return ::stat("/proc/thread-self/ns/net", &info) == 0 ? info.st_ino : 0;
}

class PrivateNetnsEnvironment : public ::testing::Environment {
public:
  void SetUp() override {
    const std::uint64_t before = netns_inode();
    ASSERT_EQ(::unshare(CLONE_NEWNET), 0) << "unshare(CLONE_NEWNET): " << std::strerror(errno) << " (run as root)";
    ASSERT_NE(netns_inode(), before) << "still in the original network namespace";
    struct statfs info {};
    ASSERT_TRUE(::statfs(kBpffs.c_str(), &info) == 0 && info.f_type == BPF_FS_MAGIC) << "no bpffs on " << kBpffs;
    // libxdp keeps its lock and dispatcher pins there; read once, at its first use.
    libxdp_dir_ = kBpffs / (kTestName + "-libxdp");
    fs::create_directories(libxdp_dir_);
    ASSERT_EQ(::setenv("LIBXDP_BPFFS", libxdp_dir_.c_str(), 1), 0);
    route_bpf_library_logs();
  }
  void TearDown() override {
    std::error_code ignored;
    fs::remove_all(libxdp_dir_, ignored);
  }

private:
  fs::path libxdp_dir_;
};

const auto* const g_environment = ::testing::AddGlobalTestEnvironment(new PrivateNetnsEnvironment);

struct MapLayout {
  bpf_map_type type;
  __u32 key_size;
  __u32 value_size;
  __u32 max_entries;
};

// This xdpfwd's layouts (bpf/xdpfwd.bpf.c), and those of an "earlier version" that differ only in
// max_entries: services and malformed smaller, service_stats larger.
const MapLayout kServices{BPF_MAP_TYPE_HASH, sizeof(xdpfwd_service_key), sizeof(xdpfwd_service_value),
                          XDPFWD_MAX_SERVICE_IPS};
const MapLayout kOldServices{BPF_MAP_TYPE_HASH, sizeof(xdpfwd_service_key), sizeof(xdpfwd_service_value), 64};
const MapLayout kOldIngressDevs{BPF_MAP_TYPE_DEVMAP_HASH, sizeof(__u32), sizeof(bpf_devmap_val), 16};
const MapLayout kOldServiceStats{BPF_MAP_TYPE_PERCPU_ARRAY, sizeof(__u32), sizeof(xdpfwd_service_stats),
                                 XDPFWD_MAX_SERVICE_IPS + 100};
const MapLayout kOldMalformed{BPF_MAP_TYPE_PERCPU_ARRAY, sizeof(__u32), sizeof(__u64), XDPFWD_MALFORMED_REASONS - 2};

// Slots of the old service_stats that hold counters; the last is past the new map's end.
constexpr __u32 kStatsSlots[] = {0, 5, XDPFWD_MAX_SERVICE_IPS + 10};
constexpr __u32 kMalformedSlot = XDPFWD_MALFORMED_IPV4_HEADER;
constexpr __u32 kLoopbackIfindex = 1; // `lo`, in every network namespace

int cpus() { return libbpf_num_possible_cpus(); }

UniqueFd create_map(const MapLayout& layout, const char* name) {
  UniqueFd fd(bpf_map_create(layout.type, name, layout.key_size, layout.value_size, layout.max_entries, nullptr));
  EXPECT_TRUE(fd) << "create map " << name << ": " << std::strerror(errno);
  return fd;
}

bpf_map_info info_of(const fs::path& pin) {
  bpf_map_info info{};
  const UniqueFd fd(bpf_obj_get(pin.c_str()));
  __u32 length = sizeof(info);
  if (!fd || bpf_obj_get_info_by_fd(fd.get(), &info, &length) != 0) return bpf_map_info{};
  return info;
}

// The id of the map pinned at a path; 0 if there is none.
__u32 pinned_id(const fs::path& pin) { return info_of(pin).id; }

__u32 id_of(int map_fd) {
  bpf_map_info info{};
  __u32 length = sizeof(info);
  return bpf_obj_get_info_by_fd(map_fd, &info, &length) == 0 ? info.id : 0;
}

size_t count_keys(const fs::path& pin, __u32 key_size) {
  const UniqueFd fd(bpf_obj_get(pin.c_str()));
  std::vector<unsigned char> key(key_size), next(key_size);
  size_t count = 0;
  for (bool first = true; fd && bpf_map_get_next_key(fd.get(), first ? nullptr : key.data(), next.data()) == 0;
       first = false) {
    key.swap(next);
    ++count;
  }
  return count;
}

xdpfwd_service_key key_of(const char* address) { return service_key(boost::asio::ip::make_address(address)); }

const char* const kServiceIps[] = {"198.18.0.10", "198.18.0.11", "fd00:18::10"};

xdpfwd_service_value service_value(__u32 stats_index) {
  xdpfwd_service_value value{};
  value.ifindex = kLoopbackIfindex;
  value.stats_index = stats_index;
  value.dst_mac[5] = static_cast<__u8>(stats_index);
  value.src_mac[0] = 0x02;
  return value;
}

// Per-CPU counters that tell CPUs and slots apart.
std::vector<xdpfwd_service_stats> stats_values(__u32 slot) {
  std::vector<xdpfwd_service_stats> values(static_cast<size_t>(cpus()));
  for (size_t cpu = 0; cpu < values.size(); ++cpu)
    values[cpu] = {1000 * (slot + 1) + cpu, 64 * (slot + 1) + cpu, cpu, slot};
  return values;
}

std::vector<__u64> malformed_values() {
  std::vector<__u64> values(static_cast<size_t>(cpus()));
  for (size_t cpu = 0; cpu < values.size(); ++cpu) values[cpu] = 7 + cpu;
  return values;
}

bool same_stats(const std::vector<xdpfwd_service_stats>& a, const std::vector<xdpfwd_service_stats>& b) {
  return a.size() == b.size() && std::memcmp(a.data(), b.data(), a.size() * sizeof(a[0])) == 0;
}

struct SkeletonDeleter {
  void operator()(xdpfwd_bpf* skeleton) const { xdpfwd_bpf__destroy(skeleton); }
  void operator()(ingress_pass_bpf* skeleton) const { ingress_pass_bpf__destroy(skeleton); }
};

// The maps of the xdpfwd BPF object, in the order HostXdp meets them.
std::vector<std::string> map_names() {
  std::unique_ptr<xdpfwd_bpf, SkeletonDeleter> skeleton(xdpfwd_bpf__open());
  std::vector<std::string> names;
  bpf_map* map;
  bpf_object__for_each_map(map, skeleton->obj) names.emplace_back(bpf_map__name(map));
  return names;
}

// A veth pair in the test's own network namespace, removed with this object.
class Veth {
public:
  Veth(std::string name, const std::string& peer) : name_(std::move(name)) {
    const UniqueFd here(::open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC));
    Netlink::open().create_veth(name_, peer, here.get());
    ifindex_ = static_cast<int>(::if_nametoindex(name_.c_str()));
  }
  Veth(const Veth&) = delete;
  Veth& operator=(const Veth&) = delete;
  ~Veth() {
    try {
      Netlink::open().delete_link(name_);
    } catch (const std::exception& error) {
      ADD_FAILURE() << error.what();
    }
  }
  const std::string& name() const { return name_; }
  int ifindex() const { return ifindex_; }

private:
  std::string name_;
  int ifindex_ = 0;
};

__u32 attached_program(int ifindex) {
  __u32 id = 0;
  EXPECT_EQ(bpf_xdp_query_id(ifindex, XDP_FLAGS_SKB_MODE, &id), 0);
  return id;
}

__u32 program_id(int program_fd) {
  bpf_prog_info info{};
  __u32 length = sizeof(info);
  return bpf_obj_get_info_by_fd(program_fd, &info, &length) == 0 ? info.id : 0;
}

class HostXdpTest : public ::testing::Test {
protected:
  void SetUp() override {
    pin_dir_ = kBpffs / kTestName;
    std::error_code ignored;
    fs::remove_all(pin_dir_, ignored);
    auto capture = std::make_shared<spdlog::sinks::ostream_sink_mt>(log_);
    capture->set_pattern("%l %v");
    auto logger = std::make_shared<spdlog::logger>(
        "host_xdp_test", spdlog::sinks_init_list{capture, std::make_shared<spdlog::sinks::stderr_sink_mt>()});
    logger->set_level(spdlog::level::info);
    spdlog::set_default_logger(std::move(logger));
  }
  void TearDown() override {
    spdlog::set_default_logger(
        std::make_shared<spdlog::logger>("stderr", std::make_shared<spdlog::sinks::stderr_sink_mt>()));
    std::error_code ignored;
    fs::remove_all(pin_dir_, ignored);
  }

  fs::path pin(std::string_view name) const { return pin_dir_ / std::string(name); }
  fs::path old_pin(std::string_view name) const { return pin(name).string() + ":old"; }
  std::string log() const { return log_.str(); }

  void pin_map(int fd, std::string_view name) {
    fs::create_directories(pin_dir_);
    ASSERT_EQ(bpf_obj_pin(fd, pin(name).c_str()), 0) << "pin " << pin(name) << ": " << std::strerror(errno);
  }

  // What an earlier xdpfwd with other max_entries would have left: every map pinned, a few
  // entries, counters on every CPU. Returns the maps' ids by name.
  std::map<std::string, __u32> pin_old_layout() {
    std::map<std::string, __u32> ids;
    const UniqueFd services = create_map(kOldServices, "services");
    for (__u32 i = 0; i < std::size(kServiceIps); ++i) {
      const auto key = key_of(kServiceIps[i]);
      const auto value = service_value(kStatsSlots[i]);
      EXPECT_EQ(bpf_map_update_elem(services.get(), &key, &value, BPF_ANY), 0);
    }
    const UniqueFd ingress_devs = create_map(kOldIngressDevs, "ingress_devs");
    bpf_devmap_val dev{};
    dev.ifindex = kLoopbackIfindex;
    EXPECT_EQ(bpf_map_update_elem(ingress_devs.get(), &kLoopbackIfindex, &dev, BPF_ANY), 0) << std::strerror(errno);
    const UniqueFd service_stats = create_map(kOldServiceStats, "service_stats");
    for (const __u32 slot : kStatsSlots)
      EXPECT_EQ(bpf_map_update_elem(service_stats.get(), &slot, stats_values(slot).data(), BPF_ANY), 0);
    const UniqueFd malformed = create_map(kOldMalformed, "malformed");
    EXPECT_EQ(bpf_map_update_elem(malformed.get(), &kMalformedSlot, malformed_values().data(), BPF_ANY), 0);

    for (const auto& [name, fd] :
         {std::pair{kServicesMap, services.get()}, std::pair{kIngressDevsMap, ingress_devs.get()},
          std::pair{kServiceStatsMap, service_stats.get()}, std::pair{kMalformedMap, malformed.get()}}) {
      pin_map(fd, name);
      ids[std::string(name)] = id_of(fd);
    }
    return ids;
  }

  // The entries pin_old_layout() wrote, read from whatever is pinned now. stats_slots_kept: the
  // slots of service_stats expected to hold their counters.
  void expect_old_entries(const std::vector<__u32>& stats_slots_kept) {
    const UniqueFd services(bpf_obj_get(pin(kServicesMap).c_str()));
    ASSERT_TRUE(services);
    for (__u32 i = 0; i < std::size(kServiceIps); ++i) {
      const auto key = key_of(kServiceIps[i]);
      xdpfwd_service_value value{};
      ASSERT_EQ(bpf_map_lookup_elem(services.get(), &key, &value), 0) << kServiceIps[i];
      const auto expected = service_value(kStatsSlots[i]);
      EXPECT_EQ(std::memcmp(&value, &expected, sizeof(value)), 0) << kServiceIps[i];
    }
    const UniqueFd ingress_devs(bpf_obj_get(pin(kIngressDevsMap).c_str()));
    bpf_devmap_val dev{};
    ASSERT_EQ(bpf_map_lookup_elem(ingress_devs.get(), &kLoopbackIfindex, &dev), 0);
    EXPECT_EQ(dev.ifindex, kLoopbackIfindex);
    const UniqueFd service_stats(bpf_obj_get(pin(kServiceStatsMap).c_str()));
    for (const __u32 slot : stats_slots_kept) {
      std::vector<xdpfwd_service_stats> values(static_cast<size_t>(cpus()));
      ASSERT_EQ(bpf_map_lookup_elem(service_stats.get(), &slot, values.data()), 0) << "slot " << slot;
      EXPECT_TRUE(same_stats(values, stats_values(slot))) << "service_stats[" << slot << "]";
    }
    const UniqueFd malformed(bpf_obj_get(pin(kMalformedMap).c_str()));
    std::vector<__u64> values(static_cast<size_t>(cpus()));
    ASSERT_EQ(bpf_map_lookup_elem(malformed.get(), &kMalformedSlot, values.data()), 0);
    EXPECT_EQ(values, malformed_values());
  }

  fs::path pin_dir_;
  std::ostringstream log_;
};

const std::string_view kMapNames[] = {kServicesMap, kIngressDevsMap, kServiceStatsMap, kMalformedMap};

TEST_F(HostXdpTest, PinsOfTheSameLayoutAreAdoptedWithTheirEntries) {
  std::map<std::string, __u32> ids;
  {
    HostXdp first(pin_dir_, false);
    first.set_service(boost::asio::ip::make_address(kServiceIps[0]), service_value(3));
    first.add_ingress_dev(kLoopbackIfindex);
    const __u32 slot = 3;
    ASSERT_EQ(bpf_map_update_elem(first.service_stats_fd(), &slot, stats_values(slot).data(), BPF_ANY), 0);
    first.commit();
    first.release();
    for (const auto name : kMapNames) ids[std::string(name)] = pinned_id(pin(name));
  }
  HostXdp second(pin_dir_, true);
  for (const auto name : kMapNames) {
    EXPECT_EQ(pinned_id(pin(name)), ids[std::string(name)]) << name << " is the same map";
    EXPECT_FALSE(fs::exists(old_pin(name)));
  }
  EXPECT_NE(log().find("adopting the BPF maps the previous run left pinned"), std::string::npos) << log();
  const UniqueFd services(bpf_obj_get(pin(kServicesMap).c_str()));
  const auto key = key_of(kServiceIps[0]);
  xdpfwd_service_value value{};
  EXPECT_EQ(bpf_map_lookup_elem(services.get(), &key, &value), 0);
  EXPECT_EQ(value.stats_index, 3u);
  std::vector<xdpfwd_service_stats> stats(static_cast<size_t>(cpus()));
  const __u32 slot = 3;
  ASSERT_EQ(bpf_map_lookup_elem(second.service_stats_fd(), &slot, stats.data()), 0);
  EXPECT_TRUE(same_stats(stats, stats_values(slot)));
}

TEST_F(HostXdpTest, StartUndoneRemovesOnlyThePinsItCreated) {
  {
    HostXdp fresh(pin_dir_, false);
    for (const auto name : kMapNames) EXPECT_NE(pinned_id(pin(name)), 0u) << name;
  } // never committed: what it created goes
  EXPECT_FALSE(fs::exists(pin_dir_));

  std::map<std::string, __u32> ids;
  {
    HostXdp previous(pin_dir_, false);
    previous.commit();
    previous.release();
    for (const auto name : kMapNames) ids[std::string(name)] = pinned_id(pin(name));
  }
  {
    HostXdp adopting(pin_dir_, true);
  } // never committed: the previous run's pins stay
  for (const auto name : kMapNames) EXPECT_EQ(pinned_id(pin(name)), ids[std::string(name)]) << name;
  {
    HostXdp adopting(pin_dir_, true);
    adopting.commit();
  } // committed, then stopped: every pin goes
  EXPECT_FALSE(fs::exists(pin_dir_));
}

TEST_F(HostXdpTest, OldLayoutPinsAreUpgradedWithTheirEntriesAndRemovedOnCommit) {
  const auto old_ids = pin_old_layout();
  auto host = std::make_unique<HostXdp>(pin_dir_, true);

  for (const auto name : kMapNames) {
    const auto info = info_of(pin(name));
    EXPECT_NE(info.id, 0u) << name;
    EXPECT_NE(info.id, old_ids.at(std::string(name))) << name << " is a new map";
    EXPECT_EQ(pinned_id(old_pin(name)), old_ids.at(std::string(name))) << name << ":old is the old map";
  }
  EXPECT_EQ(info_of(pin(kServicesMap)).max_entries, static_cast<__u32>(XDPFWD_MAX_SERVICE_IPS));
  EXPECT_EQ(info_of(pin(kIngressDevsMap)).max_entries, static_cast<__u32>(XDPFWD_MAX_INGRESS_DEVS));
  EXPECT_EQ(info_of(pin(kServiceStatsMap)).max_entries, static_cast<__u32>(XDPFWD_MAX_SERVICE_IPS));
  EXPECT_EQ(info_of(pin(kMalformedMap)).max_entries, static_cast<__u32>(XDPFWD_MALFORMED_REASONS));
  expect_old_entries({kStatsSlots[0], kStatsSlots[1]});

  const std::string text = log();
  EXPECT_NE(text.find("upgrading pinned map " + pin(kServicesMap).string() +
                      " (max_entries 64 -> 4096): entries carried into the new map: 3;"),
            std::string::npos)
      << text;
  // The slot past the new service_stats' end is the one entry that cannot be carried.
  EXPECT_NE(text.find("upgrading pinned map " + pin(kServiceStatsMap).string() +
                      " (max_entries 4196 -> 4096): entries carried into the new map: 2, dropped for want of room: 1;"),
            std::string::npos)
      << text;
  EXPECT_NE(
      text.find(pin(kIngressDevsMap).string() + " (max_entries 16 -> 1024): entries carried into the new map: 1;"),
      std::string::npos)
      << text;
  EXPECT_NE(text.find(pin(kMalformedMap).string() + " (max_entries 5 -> 7): entries carried into the new map: 1;"),
            std::string::npos)
      << text;

  host->commit();
  for (const auto name : kMapNames) {
    EXPECT_FALSE(fs::exists(old_pin(name))) << name;
    EXPECT_NE(pinned_id(pin(name)), 0u) << name;
  }
  EXPECT_NE(log().find("upgrade of the pinned maps in " + pin_dir_.string() + " complete"), std::string::npos);
  host.reset();
  EXPECT_FALSE(fs::exists(pin_dir_)) << "a committed HostXdp that stops unpins everything";
}

TEST_F(HostXdpTest, FailedAttachWithoutCommitPutsTheOldPinsBack) {
  const auto old_ids = pin_old_layout();
  {
    HostXdp host(pin_dir_, true);
    EXPECT_THROW(host.attach({.name = "xdpfwd-none0", .xdp_mode = config::XdpMode::Generic}), std::system_error);
  }
  for (const auto name : kMapNames) {
    EXPECT_EQ(pinned_id(pin(name)), old_ids.at(std::string(name))) << name << " is the old map again";
    EXPECT_FALSE(fs::exists(old_pin(name))) << name;
  }
  EXPECT_EQ(info_of(pin(kServicesMap)).max_entries, kOldServices.max_entries);
  expect_old_entries({std::begin(kStatsSlots), std::end(kStatsSlots)});
  EXPECT_NE(log().find("upgrade undone"), std::string::npos) << log();
}

TEST_F(HostXdpTest, ValueSizeChangeStartsEmptyAndKeepsTheOldMapUntilCommit) {
  const MapLayout other_value{BPF_MAP_TYPE_HASH, sizeof(xdpfwd_service_key), 16, XDPFWD_MAX_SERVICE_IPS};
  const UniqueFd old = create_map(other_value, "services");
  const auto key = key_of(kServiceIps[0]);
  const unsigned char value[16] = {1, 2, 3};
  ASSERT_EQ(bpf_map_update_elem(old.get(), &key, value, BPF_ANY), 0);
  pin_map(old.get(), kServicesMap);

  HostXdp host(pin_dir_, true);
  const auto info = info_of(pin(kServicesMap));
  EXPECT_EQ(info.value_size, sizeof(xdpfwd_service_value));
  EXPECT_EQ(count_keys(pin(kServicesMap), sizeof(xdpfwd_service_key)), 0u) << "nothing carried";
  EXPECT_EQ(pinned_id(old_pin(kServicesMap)), id_of(old.get()));
  EXPECT_EQ(count_keys(old_pin(kServicesMap), sizeof(xdpfwd_service_key)), 1u) << "the old map untouched";
  EXPECT_NE(log().find("(value size 16 -> 20): its entries cannot be carried, the new map starts empty"),
            std::string::npos)
      << log();
  host.commit();
  EXPECT_FALSE(fs::exists(old_pin(kServicesMap)));
}

TEST_F(HostXdpTest, ConstructorThatThrowsAfterAnUpgradePutsThePinsBack) {
  const auto names = map_names();
  ASSERT_GE(names.size(), 2u);
  const UniqueFd old = create_map(kOldServices, "services");
  ASSERT_EQ(names.front(), kServicesMap) << "the upgraded map must come before the broken one";
  pin_map(old.get(), names.front());
  // Not a map: HostXdp can neither open nor replace it, after it moved the first one aside.
  fs::create_directories(pin(names.back()));

  try {
    HostXdp host(pin_dir_, true);
    ADD_FAILURE() << "a pin that is no map was accepted";
  } catch (const std::system_error& error) {
    EXPECT_NE(std::string(error.what()).find(pin(names.back()).string()), std::string::npos) << error.what();
  }
  EXPECT_EQ(pinned_id(pin(names.front())), id_of(old.get()));
  EXPECT_FALSE(fs::exists(old_pin(names.front())));
  EXPECT_NE(log().find("upgrade undone: " + pin(names.front()).string()), std::string::npos) << log();
  for (size_t i = 1; i + 1 < names.size(); ++i) EXPECT_FALSE(fs::exists(pin(names[i]))) << names[i];
}

TEST_F(HostXdpTest, OldPinLeftByAnUnfinishedUpgradeIsTheRealPreviousMap) {
  // A daemon died half-way through an upgrade: the old map moved aside, a new one in its place.
  const UniqueFd old = create_map(kOldServices, "services");
  const auto key = key_of(kServiceIps[1]);
  const auto value = service_value(9);
  ASSERT_EQ(bpf_map_update_elem(old.get(), &key, &value, BPF_ANY), 0);
  pin_map(old.get(), std::string(kServicesMap) + ":old");
  const UniqueFd half_made = create_map(kServices, "services");
  const auto other_key = key_of(kServiceIps[2]);
  ASSERT_EQ(bpf_map_update_elem(half_made.get(), &other_key, &value, BPF_ANY), 0);
  pin_map(half_made.get(), kServicesMap);

  HostXdp host(pin_dir_, true);
  EXPECT_NE(log().find(old_pin(kServicesMap).string() + " is left from an upgrade that did not complete"),
            std::string::npos)
      << log();
  // The old map is upgraded again; the half-made one is gone.
  EXPECT_EQ(pinned_id(old_pin(kServicesMap)), id_of(old.get()));
  const UniqueFd services(bpf_obj_get(pin(kServicesMap).c_str()));
  EXPECT_NE(id_of(services.get()), id_of(half_made.get()));
  EXPECT_EQ(count_keys(pin(kServicesMap), sizeof(xdpfwd_service_key)), 1u);
  xdpfwd_service_value carried{};
  EXPECT_EQ(bpf_map_lookup_elem(services.get(), &key, &carried), 0);
  EXPECT_EQ(carried.stats_index, 9u);
  host.commit();
  EXPECT_FALSE(fs::exists(old_pin(kServicesMap)));
}

// An earlier xdpfwd runs on a veth, alone (as libxdp leaves it where it cannot use its
// dispatcher), with a services map of another layout. A start that replaced it there and then
// failed on another interface puts it back, maps and all; a start that commits keeps its own.
TEST_F(HostXdpTest, UndoneStartPutsThePreviousProgramBackWhereItReplacedIt) {
  const Veth veth("xht0", "xht1");
  ASSERT_NE(veth.ifindex(), 0);
  fs::create_directories(pin_dir_);
  std::unique_ptr<xdpfwd_bpf, SkeletonDeleter> previous(xdpfwd_bpf__open());
  ASSERT_TRUE(previous);
  ASSERT_EQ(bpf_map__set_max_entries(previous->maps.services, kOldServices.max_entries), 0);
  bpf_map* map;
  bpf_object__for_each_map(map, previous->obj)
      ASSERT_EQ(bpf_map__set_pin_path(map, pin(bpf_map__name(map)).c_str()), 0);
  ASSERT_EQ(xdpfwd_bpf__load(previous.get()), 0);
  const int previous_fd = bpf_program__fd(previous->progs.xdpfwd_xdp);
  ASSERT_EQ(bpf_xdp_attach(veth.ifindex(), previous_fd, XDP_FLAGS_SKB_MODE, nullptr), 0);
  const __u32 previous_program = program_id(previous_fd);
  const __u32 previous_services = id_of(bpf_map__fd(previous->maps.services));
  const config::Interface interface{.name = veth.name(), .xdp_mode = config::XdpMode::Generic};

  {
    HostXdp host(pin_dir_, true);
    host.attach(interface);
    EXPECT_NE(attached_program(veth.ifindex()), previous_program) << "replaced in place";
    EXPECT_THROW(host.attach({.name = "xdpfwd-none0", .xdp_mode = config::XdpMode::Generic}), std::system_error);
  }
  EXPECT_EQ(attached_program(veth.ifindex()), previous_program);
  EXPECT_EQ(pinned_id(pin(kServicesMap)), previous_services);
  for (const auto name : kMapNames) {
    EXPECT_NE(pinned_id(pin(name)), 0u) << name << ": the previous run's pins stay";
    EXPECT_FALSE(fs::exists(old_pin(name))) << name;
  }

  {
    HostXdp host(pin_dir_, true);
    host.attach(interface);
    host.commit();
    EXPECT_FALSE(fs::exists(old_pin(kServicesMap)));
    const __u32 running = attached_program(veth.ifindex());
    EXPECT_NE(running, previous_program);
    EXPECT_NE(running, 0u);
  }
  EXPECT_EQ(attached_program(veth.ifindex()), 0u) << "a committed HostXdp that stops detaches";
  EXPECT_FALSE(fs::exists(pin_dir_));
}

// libbpf prints a whole verifier log in one call: every line of it must reach the log, at
// warning level, the reason at its end included (a log longer than any fixed buffer).
TEST_F(HostXdpTest, VerifierLogReachesTheLogWhole) {
  std::unique_ptr<ingress_pass_bpf, SkeletonDeleter> skeleton(ingress_pass_bpf__open());
  ASSERT_TRUE(skeleton);
  // Rejected at its last instruction: r0 is never set.
  std::vector<bpf_insn> program;
  for (__s32 i = 0; i < 100; ++i)
    program.push_back({.code = BPF_ALU64 | BPF_MOV | BPF_K, .dst_reg = BPF_REG_1, .src_reg = 0, .off = 0, .imm = i});
  program.push_back({.code = BPF_JMP | BPF_EXIT, .dst_reg = 0, .src_reg = 0, .off = 0, .imm = 0});
  ASSERT_EQ(bpf_program__set_insns(skeleton->progs.xdpfwd_ingress_pass, program.data(), program.size()), 0);
  EXPECT_LT(ingress_pass_bpf__load(skeleton.get()), 0);

  const std::string text = log();
  EXPECT_GT(text.size(), 2048u) << text;
  EXPECT_NE(text.find("\nwarning libbpf: prog 'xdpfwd_ingress_pass': -- BEGIN PROG LOAD LOG --\n"), std::string::npos)
      << text;
  EXPECT_NE(text.find("\nwarning libbpf: 99: (b7) r1 = 99 "), std::string::npos) << text;
  EXPECT_NE(text.find("\nwarning libbpf: R0 !read_ok\n"), std::string::npos) << text;
  EXPECT_NE(text.find("\nwarning libbpf: -- END PROG LOAD LOG --\n"), std::string::npos) << text;
}

} // namespace
} // namespace xdpfwd::testing
