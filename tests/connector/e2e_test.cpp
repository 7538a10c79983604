// End to end with the example programs and real peers on loopback:
//   curl -> divert-forward-proxy -> divert-next-proxy -> nginx (http and https)
// for the three interfaces, IPv4 and IPv6 clients, with and without auth; the
// next proxy's JSON lines are checked for the TLVs it received.
#include <regex>
#include <set>
#include <sstream>

#include "support/live.hpp"

namespace test = divert::test;
using namespace std::chrono_literals;

namespace {

std::string bin(const std::string& name) {
  return std::string(DIVERT_EXAMPLES_DIR) + "/" + name;
}

struct Pki {
  std::filesystem::path ca, cert, key;
};

Pki make_pki(const test::TempDir& dir, const std::string& openssl) {
  auto d = dir.path().string();
  auto run = [&](std::vector<std::string> args) {
    args.insert(args.begin(), openssl);
    auto r = test::run_command(args);
    REQUIRE(r.status == 0);
  };
  run({"req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
       "-days", "2", "-subj", "/CN=divert test CA", "-keyout", d + "/ca.key", "-out",
       d + "/ca.crt"});
  run({"req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-subj",
       "/CN=localhost", "-keyout", d + "/origin.key", "-out", d + "/origin.csr"});
  dir.write("san.cnf", "subjectAltName=DNS:localhost,IP:127.0.0.1,IP:::1\n");
  run({"x509", "-req", "-in", d + "/origin.csr", "-CA", d + "/ca.crt", "-CAkey", d + "/ca.key",
       "-CAcreateserial", "-days", "2", "-extfile", d + "/san.cnf", "-out", d + "/origin.crt"});
  return {dir / "ca.crt", dir / "origin.crt", dir / "origin.key"};
}

std::string nginx_conf(const test::TempDir& dir, const Pki& pki, unsigned short http,
                       unsigned short https) {
  auto d = dir.path().string();
  auto p = [](unsigned short x) { return std::to_string(x); };
  return "daemon off; master_process off; worker_processes 1;\n"
         "pid " +
         d + "/nginx.pid; error_log " + d +
         "/nginx-error.log;\n"
         "events { worker_connections 256; }\n"
         "http { access_log off;\n"
         "  client_body_temp_path " +
         d + "; proxy_temp_path " + d + "; fastcgi_temp_path " + d + "; uwsgi_temp_path " + d +
         "; scgi_temp_path " + d +
         ";\n"
         "  server { listen 127.0.0.1:" +
         p(http) + "; listen [::1]:" + p(http) +
         "; location / { return 200 \"http $request_uri\\n\"; } }\n"
         "  server { listen 127.0.0.1:" +
         p(https) + " ssl; listen [::1]:" + p(https) +
         " ssl;\n"
         "    ssl_certificate " +
         pki.cert.string() + "; ssl_certificate_key " + pki.key.string() +
         ";\n"
         "    location / { return 200 \"https $request_uri\\n\"; } }\n"
         "}\n";
}

std::vector<std::string> lines_of(const std::string& s) {
  std::vector<std::string> out;
  std::istringstream in(s);
  for (std::string l; std::getline(in, l);)
    if (!l.empty()) out.push_back(l);
  return out;
}

std::string field(const std::string& json, const std::string& name) {
  std::smatch m;
  std::regex re("\"" + name + "\":(null|\"([^\"]*)\"|([0-9]+))");
  if (!std::regex_search(json, m, re)) return "<absent>";
  if (m[1] == "null") return "null";
  return m[2].matched ? m[2].str() : m[3].str();
}

}  // namespace

TEST_CASE("curl through forward proxy and next proxy to nginx: all three interfaces") {
  auto curl = DIVERT_REQUIRE_TOOL("curl");
  auto nginx = DIVERT_REQUIRE_TOOL("nginx");
  auto openssl = DIVERT_REQUIRE_TOOL("openssl");
  if (!curl || !nginx || !openssl) return;
  test::TempDir dir;
  auto pki = make_pki(dir, *openssl);
  auto http = test::free_port(), https = test::free_port();
  auto conf = dir.write("nginx.conf", nginx_conf(dir, pki, http, https));
  test::Process origin({*nginx, "-p", dir.path().string(), "-c", conf.string()}, dir / "nginx.out",
                       dir / "nginx.err");
  REQUIRE(test::wait_for_port("127.0.0.1", http));
  REQUIRE(test::wait_for_port("127.0.0.1", https));

  auto np_port = test::free_port();
  // The origins are local: loopback upstreams allowed (denied by default).
  test::Process np({bin("divert-next-proxy"), "--listen", "127.0.0.1:" + std::to_string(np_port),
                    "--allow-upstream", "127.0.0.0/8", "--allow-upstream", "::1/128"},
                   dir / "np.jsonl", dir / "np.err");
  auto fp_port = test::free_port();
  auto fp6_port = test::free_port("::1");
  test::Process fp({bin("divert-forward-proxy"), "--listen", "127.0.0.1:" + std::to_string(fp_port),
                    "--next-proxy", "127.0.0.1:" + std::to_string(np_port), "--ca-file",
                    pki.ca.string(), "--allow", "127.0.0.0/8", "--allow", "::1/128"},
                   dir / "fp.out", dir / "fp.err");
  test::Process fp_auth(
      {bin("divert-forward-proxy"), "--listen", "[::1]:" + std::to_string(fp6_port), "--next-proxy",
       "127.0.0.1:" + std::to_string(np_port), "--user", "alice:secret", "--ca-file",
       pki.ca.string(), "--allow", "127.0.0.0/8", "--allow", "::1/128"},
      dir / "fp6.out", dir / "fp6.err");
  REQUIRE(test::wait_until(
      [&] { return test::read_file(dir / "np.err").find("listening") != std::string::npos; }));
  REQUIRE(test::wait_until(
      [&] { return test::read_file(dir / "fp.err").find("listening") != std::string::npos; }));
  REQUIRE(test::wait_until(
      [&] { return test::read_file(dir / "fp6.err").find("listening") != std::string::npos; }));

  auto proxy4 = "http://127.0.0.1:" + std::to_string(fp_port);
  auto proxy6 = "http://alice:secret@[::1]:" + std::to_string(fp6_port);
  auto H = std::to_string(http), S = std::to_string(https);
  auto run_curl = [&](std::vector<std::string> args) {
    args.insert(args.begin(), {*curl, "-sS", "--max-time", "10"});
    return test::run_command(args, 15s);
  };

  // 1. http forward (IPv4 client, no auth)
  auto r1 = run_curl({"-x", proxy4, "http://127.0.0.1:" + H + "/one"});
  CHECK(r1.out == "http /one\n");
  // 2. CONNECT tunnel (IPv4 client), TLS end to end by curl
  auto r2 = run_curl(
      {"-p", "-x", proxy4, "--cacert", pki.ca.string(), "https://localhost:" + S + "/two"});
  CHECK(r2.out == "https /two\n");
  // 3. https forward: absolute-form https URI sent to the proxy; TLS on its side
  auto r3 = run_curl({"--request-target", "https://localhost:" + S + "/three", proxy4 + "/"});
  CHECK(r3.out == "https /three\n");
  // 4. IPv6 client with auth: http forward to an IPv6 origin
  auto r4 = run_curl({"-x", proxy6, "http://[::1]:" + H + "/four"});
  CHECK(r4.out == "http /four\n");
  // 5. auth required: no credentials -> 407, nothing diverted
  auto r5 =
      run_curl({"-o", "/dev/null", "-w", "%{http_code}", "-x",
                "http://[::1]:" + std::to_string(fp6_port), "http://127.0.0.1:" + H + "/five"});
  CHECK(r5.out == "407");
  // 6. upstream down behind the next proxy: the forward proxy answers 502
  auto dead = test::free_port();
  auto r6 = run_curl({"-o", "/dev/null", "-w", "%{http_code}", "-x", proxy4,
                      "http://127.0.0.1:" + std::to_string(dead) + "/six"});
  CHECK(r6.out == "502");

  REQUIRE(
      test::wait_until([&] { return lines_of(test::read_file(dir / "np.jsonl")).size() >= 5; }));
  auto lines = lines_of(test::read_file(dir / "np.jsonl"));
  REQUIRE(lines.size() == 5);
  auto find = [&](const std::string& upstream, const std::string& tls) -> std::string {
    for (auto& l : lines)
      if (field(l, "upstream") == upstream && field(l, "tls_name") == tls) return l;
    return "";
  };
  auto l1 = find("127.0.0.1:" + H, "null");
  auto l2 = find("localhost:" + S, "null");
  auto l3 = find("localhost:" + S, "localhost");
  auto l4 = find("[::1]:" + H, "null");
  auto l6 = find("127.0.0.1:" + std::to_string(dead), "null");
  INFO(test::read_file(dir / "np.jsonl"));
  REQUIRE_FALSE(l1.empty());
  REQUIRE_FALSE(l2.empty());
  REQUIRE_FALSE(l3.empty());
  REQUIRE_FALSE(l4.empty());
  REQUIRE_FALSE(l6.empty());
  // E2 only with auth; src is the real client (IPv4 or IPv6), dst the proxy's address.
  CHECK(field(l1, "username") == "null");
  CHECK(field(l4, "username") == "alice");
  CHECK(field(l1, "dst") == "127.0.0.1:" + std::to_string(fp_port));
  CHECK(field(l4, "dst") == "[::1]:" + std::to_string(fp6_port));
  CHECK(field(l4, "src").rfind("[::1]:", 0) == 0);
  CHECK(field(l1, "src").rfind("127.0.0.1:", 0) == 0);
  CHECK(field(l1, "error") == "null");
  CHECK(field(l6, "error").find("upstream") != std::string::npos);
  // E3: a fresh UUID v7 per connection.
  std::set<std::string> ids;
  std::regex uuid7("[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}");
  for (auto& l : lines) {
    auto id = field(l, "task_id");
    CHECK(std::regex_match(id, uuid7));
    ids.insert(id);
  }
  CHECK(ids.size() == lines.size());
  // Bytes flowed both ways for the successful ones.
  for (auto* l : {&l1, &l2, &l3, &l4}) {
    CHECK(std::stoull(field(*l, "bytes_up")) > 0);
    CHECK(std::stoull(field(*l, "bytes_down")) > 0);
  }
}

TEST_CASE("example programs: --help, and clear errors for bad arguments") {
  for (auto name : {"divert-forward-proxy", "divert-next-proxy", "divert-port-forward"}) {
    auto help = test::run_command({bin(name), "--help"});
    CHECK(help.status == 0);
    CHECK(help.out.find("usage: " + std::string(name)) != std::string::npos);
    auto bad = test::run_command({bin(name), "--no-such-option"});
    CHECK(bad.status == 2);
  }
  auto fp = test::run_command({bin("divert-forward-proxy"), "--next-proxy", "0.0.0.0"});
  CHECK(fp.status == 2);
  auto pf = test::run_command(
      {bin("divert-port-forward"), "--next-proxy", "127.0.0.1", "--upstream", "x.test"});
  CHECK(pf.status == 2);
}
