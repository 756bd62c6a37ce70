// DockerClient against a fake engine: a unix-socket HTTP/1.1 server on a thread of the test,
// answering each request through a handler the test provides.
#include "docker_client.hpp"

#include <boost/asio/io_context.hpp>
#include <boost/asio/local/stream_protocol.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http.hpp>
#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <functional>
#include <mutex>
#include <thread>

namespace xdpfwd::docker {
namespace {

namespace asio = boost::asio;
namespace http = boost::beast::http;
using local = asio::local::stream_protocol;
using namespace std::chrono_literals;

struct Seen {
  std::string method;
  std::string target;
  std::string body;
};

// A handler answers one request; when it returns a `raw` string, that is written as is (for the
// chunked event stream) and the connection stays as the handler leaves it.
struct Answer {
  int status = 200;
  std::string body;
  std::vector<std::string> chunks; // chunked body, each written separately
  std::chrono::milliseconds pause_between_chunks{0};
  bool keep_open = false;          // after the chunks, keep the connection until the test ends
};

class FakeEngine {
public:
  using Handler = std::function<Answer(const Seen&)>;

  explicit FakeEngine(Handler handler) : handler_(std::move(handler)) {
    char pattern[] = "/tmp/xdpfwd-fake-docker.XXXXXX";
    dir_ = ::mkdtemp(pattern);
    path_ = dir_ + "/docker.sock";
    acceptor_.open();
    acceptor_.bind(local::endpoint(path_));
    acceptor_.listen();
    thread_ = std::thread([this] { serve(); });
  }
  ~FakeEngine() {
    stopping_ = true;
    boost::system::error_code ignored;
    // Wake the accept() with one last connection.
    local::socket poke(io_);
    poke.connect(local::endpoint(path_), ignored);
    thread_.join();
    std::filesystem::remove_all(dir_);
  }
  const std::string& path() const { return path_; }
  std::vector<Seen> seen() const {
    std::lock_guard lock(mutex_);
    return seen_;
  }

private:
  void serve() {
    std::vector<std::unique_ptr<local::socket>> kept;
    while (!stopping_) {
      auto socket = std::make_unique<local::socket>(io_);
      boost::system::error_code error;
      acceptor_.accept(*socket, error);
      if (error || stopping_) break;
      boost::beast::flat_buffer buffer;
      http::request<http::string_body> request;
      http::read(*socket, buffer, request, error);
      if (error) continue;
      Seen seen{std::string(request.method_string()), std::string(request.target()), request.body()};
      {
        std::lock_guard lock(mutex_);
        seen_.push_back(seen);
      }
      const Answer answer = handler_(seen);
      if (answer.chunks.empty()) {
        http::response<http::string_body> response(static_cast<http::status>(answer.status), 11);
        response.set(http::field::content_type, "application/json");
        response.body() = answer.body;
        response.prepare_payload();
        http::write(*socket, response, error);
        continue;
      }
      std::string head = "HTTP/1.1 " + std::to_string(answer.status) +
                         " OK\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n";
      asio::write(*socket, asio::buffer(head), error);
      for (const auto& chunk : answer.chunks) {
        char size[32];
        std::snprintf(size, sizeof size, "%zx\r\n", chunk.size());
        asio::write(*socket, asio::buffer(std::string(size) + chunk + "\r\n"), error);
        std::this_thread::sleep_for(answer.pause_between_chunks);
      }
      if (answer.keep_open) kept.push_back(std::move(socket));
      else asio::write(*socket, asio::buffer(std::string("0\r\n\r\n")), error);
    }
  }

  Handler handler_;
  std::string dir_;
  std::string path_;
  asio::io_context io_;
  local::acceptor acceptor_{io_};
  std::thread thread_;
  std::atomic<bool> stopping_{false};
  mutable std::mutex mutex_;
  std::vector<Seen> seen_;
};

Answer reply(int status, std::string body) {
  Answer answer;
  answer.status = status;
  answer.body = std::move(body);
  return answer;
}

Answer version_answer(const std::string& api) {
  return reply(200, nlohmann::json{{"Version", "20.10.24"}, {"ApiVersion", api}, {"MinAPIVersion", "1.12"}}.dump());
}

TEST(ApiVersion, ParsesAndOrders) {
  EXPECT_EQ(ApiVersion::parse("1.41"), (ApiVersion{1, 41}));
  EXPECT_FALSE(ApiVersion::parse("1"));
  EXPECT_FALSE(ApiVersion::parse("1.x"));
  EXPECT_FALSE(ApiVersion::parse("1.41b"));
  EXPECT_LT((ApiVersion{1, 9}), (ApiVersion{1, 41}));
}

TEST(DockerClient, NegotiatesTheEnginesVersionAndUsesItInPaths) {
  FakeEngine engine([](const Seen& seen) -> Answer {
    if (seen.target == "/version") return version_answer("1.41");
    return reply(200, R"({"Id":"abc"})");
  });
  DockerClient client(engine.path());
  EXPECT_EQ(client.api_version(), "1.41");
  EXPECT_FALSE(client.inspect_network("xdpfwd-waf") == std::nullopt);
  const auto seen = engine.seen();
  ASSERT_EQ(seen.size(), 2u);
  EXPECT_EQ(seen[1].target, "/v1.41/networks/xdpfwd-waf");
}

TEST(DockerClient, CapsANewerEnginesVersion) {
  FakeEngine engine([](const Seen&) { return version_answer("1.50"); });
  DockerClient client(engine.path());
  EXPECT_EQ(client.api_version(), kMaxApiVersion.to_string());
}

TEST(DockerClient, RefusesAnOlderEngine) {
  FakeEngine engine([](const Seen&) { return version_answer("1.30"); });
  DockerClient client(engine.path());
  try {
    client.api_version();
    FAIL() << "no error";
  } catch (const DockerError& error) {
    EXPECT_NE(std::string(error.what()).find("API 1.30, older than the 1.40 xdpfwd needs"), std::string::npos) << error.what();
  }
}

TEST(DockerClient, ErrorsSayWhatDockerAnswered) {
  FakeEngine engine([](const Seen& seen) -> Answer {
    if (seen.target == "/version") return version_answer("1.41");
    return reply(409, R"({"message":"network with name xdpfwd-waf already exists"})");
  });
  DockerClient client(engine.path());
  try {
    OverlaySpec spec;
    spec.name = "xdpfwd-waf";
    spec.vni = 4101;
    spec.subnet = "10.201.0.0/24";
    client.create_overlay(spec);
    FAIL() << "no error";
  } catch (const DockerError& error) {
    EXPECT_EQ(error.status(), 409);
    EXPECT_TRUE(error.conflict());
    EXPECT_EQ(error.message(), "network with name xdpfwd-waf already exists");
    EXPECT_STREQ(error.what(), "docker: POST /v1.41/networks/create: 409 Conflict: network with name xdpfwd-waf already exists");
  }
  const auto body = nlohmann::json::parse(engine.seen().back().body);
  EXPECT_EQ(body["Options"]["com.docker.network.driver.overlay.vxlanid_list"], "4101");
  EXPECT_EQ(body["IPAM"]["Config"][0]["Subnet"], "10.201.0.0/24");
  EXPECT_EQ(body["Attachable"], true);
  EXPECT_EQ(body["Driver"], "overlay");
}

TEST(DockerClient, NotFoundIsNulloptForInspections) {
  FakeEngine engine([](const Seen& seen) -> Answer {
    if (seen.target == "/version") return version_answer("1.41");
    return reply(404, R"({"message":"no such thing"})");
  });
  DockerClient client(engine.path());
  EXPECT_EQ(client.inspect_network("x"), std::nullopt);
  EXPECT_EQ(client.inspect_container("x"), std::nullopt);
  EXPECT_EQ(client.inspect_service("x"), std::nullopt);
  EXPECT_EQ(client.inspect_image("x"), std::nullopt);
  EXPECT_NO_THROW(client.remove_container("x"));
  EXPECT_NO_THROW(client.remove_network("x"));
}

TEST(DockerClient, NoEngineIsAnErrorNamingTheSocket) {
  DockerClient client("/nonexistent/docker.sock");
  try {
    client.api_version();
    FAIL() << "no error";
  } catch (const DockerError& error) {
    EXPECT_EQ(error.status(), 0);
    EXPECT_NE(std::string(error.what()).find("cannot connect to /nonexistent/docker.sock"), std::string::npos) << error.what();
  }
}

TEST(DockerClient, RunningTaskAddressesOnTheGivenNetworkOnly) {
  const nlohmann::json tasks = nlohmann::json::parse(R"([
    {"ID":"t2","ServiceID":"s1","Slot":2,"NodeID":"n1","Status":{"State":"running","ContainerStatus":{"ContainerID":"c2"}},
     "NetworksAttachments":[{"Network":{"ID":"other"},"Addresses":["10.9.0.3/24"]},
                            {"Network":{"ID":"net"},"Addresses":["10.201.0.6/24"]}]},
    {"ID":"t1","ServiceID":"s1","Slot":1,"NodeID":"n2","Status":{"State":"running","ContainerStatus":{"ContainerID":"c1"}},
     "NetworksAttachments":[{"Network":{"ID":"net"},"Addresses":["10.201.0.5/24"]}]},
    {"ID":"t3","ServiceID":"s1","Slot":3,"Status":{"State":"starting"},
     "NetworksAttachments":[{"Network":{"ID":"net"},"Addresses":["10.201.0.7/24"]}]},
    {"ID":"t4","ServiceID":"s1-other","Slot":1,"Status":{"State":"running"},
     "NetworksAttachments":[{"Network":{"ID":"net"},"Addresses":["10.201.0.8/24"]}]}
  ])");
  FakeEngine engine([&](const Seen& seen) -> Answer {
    if (seen.target == "/version") return version_answer("1.41");
    if (seen.target.starts_with("/v1.41/services/")) return reply(200, R"({"ID":"s1","Version":{"Index":7},"Spec":{}})");
    return reply(200, tasks.dump());
  });
  DockerClient client(engine.path());
  const auto replicas = client.running_task_addresses("waf-a", "net");
  ASSERT_EQ(replicas.size(), 2u);
  EXPECT_EQ(replicas[0].address, "10.201.0.5");
  EXPECT_EQ(replicas[0].task_id, "t1");
  EXPECT_EQ(replicas[0].container_id, "c1");
  EXPECT_EQ(replicas[0].node_id, "n2");
  EXPECT_EQ(replicas[1].address, "10.201.0.6");
  const auto target = engine.seen().back().target;
  EXPECT_NE(target.find("/v1.41/tasks?filters="), std::string::npos);
  EXPECT_NE(target.find("desired-state"), std::string::npos);
}

TEST(DockerClient, AttachingANetworkUpdatesTheSpecAtItsVersionAndRetriesOutOfSequence) {
  int updates = 0;
  FakeEngine engine([&](const Seen& seen) -> Answer {
    if (seen.target == "/version") return version_answer("1.41");
    if (seen.method == "GET")
      return reply(200, R"({"ID":"s1","Version":{"Index":)" + std::to_string(10 + updates) +
                            R"(},"Spec":{"Name":"waf-a","Networks":[{"Target":"legacy"}],"TaskTemplate":{"ContainerSpec":{}}}})");
    if (++updates == 1) return reply(500, R"({"message":"rpc error: code = Unknown desc = update out of sequence"})");
    return reply(200, R"({"Warnings":null})");
  });
  DockerClient client(engine.path());
  EXPECT_TRUE(client.attach_service_network("waf-a", "net", {{"xdpfwd.attached.waf", "xdpfwd-waf"}}));
  const auto seen = engine.seen();
  const auto& update = seen.back();
  EXPECT_EQ(update.target, "/v1.41/services/s1/update?version=11");
  const auto spec = nlohmann::json::parse(update.body);
  EXPECT_FALSE(spec.contains("Networks"));
  EXPECT_EQ(spec["TaskTemplate"]["Networks"],
            nlohmann::json::parse(R"([{"Target":"legacy"},{"Target":"net"}])"));
  EXPECT_EQ(spec["Labels"]["xdpfwd.attached.waf"], "xdpfwd-waf");
}

TEST(DockerClient, AttachingIsANoOpWhenAttached) {
  FakeEngine engine([&](const Seen& seen) -> Answer {
    if (seen.target == "/version") return version_answer("1.41");
    return reply(200, R"({"ID":"s1","Version":{"Index":3},"Spec":{"TaskTemplate":{"Networks":[{"Target":"net"}]}}})");
  });
  DockerClient client(engine.path());
  EXPECT_FALSE(client.attach_service_network("waf-a", "net"));
  EXPECT_EQ(engine.seen().size(), 2u); // version, inspect; no update
}

TEST(DockerClient, BuildErrorsInTheProgressStreamAreErrors) {
  FakeEngine engine([&](const Seen& seen) -> Answer {
    if (seen.target == "/version") return version_answer("1.41");
    return reply(200, "{\"stream\":\"Step 1/2 : FROM scratch\\n\"}\n{\"error\":\"COPY failed: no source files\"}\n");
  });
  DockerClient client(engine.path());
  try {
    client.build_image(make_tar({{"Dockerfile", "FROM scratch\n"}}), "x:latest");
    FAIL() << "no error";
  } catch (const DockerError& error) {
    EXPECT_EQ(error.message(), "COPY failed: no source files");
  }
  EXPECT_EQ(engine.seen().back().target, "/v1.41/build?t=x%3Alatest&rm=1&forcerm=1");
}

TEST(EventStream, DeliversEachLineAcrossChunksAndTimesOut) {
  FakeEngine engine([&](const Seen& seen) -> Answer {
    if (seen.target == "/version") return version_answer("1.41");
    Answer answer;
    answer.chunks = {R"({"Type":"service","Action":"update"})" "\n" R"({"Type":"cont)",
                     R"(ainer","Action":"die"})" "\n"};
    answer.pause_between_chunks = 50ms;
    answer.keep_open = true;
    return answer;
  });
  DockerClient client(engine.path());
  auto stream = client.events({{"type", {"service", "container"}}});
  const auto first = stream.next(2s);
  ASSERT_TRUE(first);
  EXPECT_EQ((*first)["Type"], "service");
  const auto second = stream.next(2s);
  ASSERT_TRUE(second);
  EXPECT_EQ((*second)["Action"], "die");
  const auto start = std::chrono::steady_clock::now();
  EXPECT_FALSE(stream.next(200ms));
  EXPECT_GE(std::chrono::steady_clock::now() - start, 190ms);
  EXPECT_NE(engine.seen().back().target.find("/v1.41/events?filters="), std::string::npos);
}

TEST(EventStream, TheEngineEndingTheStreamIsAnError) {
  FakeEngine engine([&](const Seen& seen) -> Answer {
    if (seen.target == "/version") return version_answer("1.41");
    Answer answer;
    answer.chunks = {R"({"Type":"node","Action":"update"})" "\n"};
    return answer; // then the last chunk: the stream ends
  });
  DockerClient client(engine.path());
  auto stream = client.events({});
  EXPECT_TRUE(stream.next(2s));
  EXPECT_THROW(stream.next(2s), DockerError);
}

TEST(EventStream, AnErrorAnswerCarriesDockersMessage) {
  FakeEngine engine([&](const Seen& seen) -> Answer {
    if (seen.target == "/version") return version_answer("1.41");
    return reply(400, R"({"message":"invalid filter 'typo'"})");
  });
  DockerClient client(engine.path());
  try {
    client.events({{"typo", {"x"}}});
    FAIL() << "no error";
  } catch (const DockerError& error) {
    EXPECT_EQ(error.status(), 400);
    EXPECT_EQ(error.message(), "invalid filter 'typo'");
  }
}

TEST(Helpers, UrlEncodingAndFilters) {
  EXPECT_EQ(url_encode("a b/{\"x\"}"), "a%20b%2F%7B%22x%22%7D");
  EXPECT_EQ(with_filters("/tasks", {{"service", {"s"}}}), "/tasks?filters=%7B%22service%22%3A%5B%22s%22%5D%7D");
  EXPECT_EQ(with_filters("/containers/json?all=true", {{"label", {"a"}}}),
            "/containers/json?all=true&filters=%7B%22label%22%3A%5B%22a%22%5D%7D");
  EXPECT_EQ(with_filters("/tasks", nlohmann::json::object()), "/tasks");
}

TEST(Helpers, TarArchivesAreReadableByTar) {
  const std::string archive = make_tar({{"Dockerfile", "FROM scratch\n"}, {"rootfs/bin/x", "hello", 0755}});
  EXPECT_EQ(archive.size() % 512, 0u);
  char pattern[] = "/tmp/xdpfwd-tar-test.XXXXXX";
  const std::string dir = ::mkdtemp(pattern);
  { std::FILE* file = std::fopen((dir + "/a.tar").c_str(), "wb"); std::fwrite(archive.data(), 1, archive.size(), file); std::fclose(file); }
  const std::string command = "tar -tvf " + dir + "/a.tar > " + dir + "/list 2>&1";
  EXPECT_EQ(std::system(command.c_str()), 0);
  std::FILE* list = std::fopen((dir + "/list").c_str(), "r");
  char text[512] = {};
  std::fread(text, 1, sizeof text - 1, list);
  std::fclose(list);
  EXPECT_NE(std::string(text).find("rootfs/bin/x"), std::string::npos) << text;
  EXPECT_NE(std::string(text).find("-rwxr-xr-x"), std::string::npos) << text;
  std::filesystem::remove_all(dir);
}

} // namespace
} // namespace xdpfwd::docker
