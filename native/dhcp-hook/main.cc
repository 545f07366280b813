// vmm-dhcp-hook (compiled): what clients/dnsmasq-hook/vmm-dhcp-hook does,
// without forking curl. dnsmasq runs its script for every lease, one at a
// time, and replays every lease it holds when it starts; curl's own start
// is ~15 ms here, this program's ~1 ms.
//
// Either is an entry point: dnsmasq runs this program directly when it is
// built (vmmd's networks and scripts/setup-bridge.sh pick it, one process
// start less per lease), or the script, which execs it. Both read
// VMM_HOOK_CONF the same way (LoadConf). This program hands an https://
// VMM_URL (no TLS here), or VMM_HOOK_SHELL=1, to the script beside the
// checkout's clients/ (HandToScript). Both must behave alike:
// the same arguments, environment, filters, JSON body, token rules, log
// lines and exit status (test/integration/hook-token.test.ts runs its
// cases against both).
//
//   vmm-dhcp-hook add|old|del MAC IP [HOSTNAME]
//   env: VMM_SOCKET VMM_URL VMM_LEASE_TOKEN_FILE VMM_HOOK_TIMEOUT VMM_HOOK_LOG
//        DNSMASQ_SUPPLIED_HOSTNAME DNSMASQ_INTERFACE DNSMASQ_LEASE_EXPIRES
//   exit: 0 accepted, 1 refused or unreachable (a log line says why), 2 usage
//
// Every value that reaches the JSON body is reduced to a strict character
// set first (the hostname comes from the guest); the token reaches vmmd in
// a header and appears in no command line or environment.
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include <string>

extern char** environ;

namespace {

const char kPath[] = "/vmm.v1.VmmService/ReportDhcpLease";
constexpr size_t kLook = 1024;        // characters of a value looked at
constexpr size_t kTokenFileMax = 4096;
constexpr size_t kTokenMax = 512;
constexpr size_t kAnswerMax = 65536;  // bytes of vmmd's answer read

std::string Env(const char* k) {
  const char* v = getenv(k);
  return v ? v : "";
}

void Log(const std::string& m) {
  std::string line = "vmm-dhcp-hook: " + m + "\n";
  if (write(2, line.data(), line.size()) < 0) {
    // stderr gone: the log file below is all there is
  }
  std::string file = Env("VMM_HOOK_LOG");
  if (file.empty()) return;
  char ts[32];
  time_t now = time(nullptr);
  struct tm tm;
  strftime(ts, sizeof ts, "%Y-%m-%dT%H:%M:%SZ ", gmtime_r(&now, &tm));
  int fd = open(file.c_str(), O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC | O_NOCTTY, 0644);
  if (fd < 0) return;
  std::string rec = ts + line;
  if (write(fd, rec.data(), rec.size()) < 0) {
    // as the shell's `>>`: a log that cannot be written does not fail the report
  }
  close(fd);
}

// keep: VALUE's characters that `ok` accepts, in order, at most `max`,
// looking at no more than its first kLook characters.
template <typename Pred>
std::string Keep(const std::string& v, size_t max, Pred ok) {
  std::string out;
  for (size_t i = 0; i < v.size() && i < kLook && out.size() < max; i++) {
    unsigned char c = static_cast<unsigned char>(v[i]);
    if (ok(c)) out += static_cast<char>(c);
  }
  return out;
}
bool IsDigit(unsigned char c) { return c >= '0' && c <= '9'; }
bool IsAlnum(unsigned char c) { return IsDigit(c) || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'); }
bool IsMacChar(unsigned char c) { return IsDigit(c) || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F') || c == ':' || c == '-'; }
bool IsIpChar(unsigned char c) { return IsDigit(c) || c == '.'; }
bool IsNameChar(unsigned char c) { return IsAlnum(c) || c == '.' || c == '_' || c == '-'; }
bool IsPrintable(unsigned char c) { return c >= 0x20 && c < 0x7f; }
bool IsSpace(unsigned char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\v' || c == '\f' || c == '\r'; }

// The token of VMM_LEASE_TOKEN_FILE as vmmd reads its own token files
// (whitespace around it dropped; none inside; at most 512 characters), or
// false after a log line.
bool ReadToken(const std::string& path, std::string* token) {
  // O_NONBLOCK: a FIFO in its place does not hang the hook; what was
  // opened is what is checked (no stat-then-open window).
  int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
  struct stat st;
  if (fd < 0 || fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    if (fd >= 0) close(fd);
    Log("cannot read token file " + path);
    return false;
  }
  std::string text;
  char buf[1024];
  for (;;) {
    ssize_t n = read(fd, buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    text.append(buf, static_cast<size_t>(n));
    if (text.size() > kTokenFileMax) break;
  }
  close(fd);
  // The shell hook counts a last line without its newline as if it had one.
  if (!text.empty() && text.back() != '\n') text += '\n';
  if (text.size() > kTokenFileMax) {
    Log("token file " + path + " holds more than 4096 characters");
    return false;
  }
  size_t b = 0, e = text.size();
  while (b < e && IsSpace(static_cast<unsigned char>(text[b]))) b++;
  while (e > b && IsSpace(static_cast<unsigned char>(text[e - 1]))) e--;
  std::string t = text.substr(b, e - b);
  for (unsigned char c : t) {
    // Whitespace, and control characters (which cannot be in a header either).
    if (c <= 0x20 || c == 0x7f) {
      Log("token file " + path + ": whitespace inside the token");
      return false;
    }
  }
  if (t.size() > kTokenMax) {
    Log("token file " + path + ": the token is longer than 512 characters");
    return false;
  }
  if (t.empty()) {
    Log("token file " + path + " is empty");
    return false;
  }
  *token = t;
  return true;
}

long long NowMs() {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec * 1000LL + ts.tv_nsec / 1000000;
}

// Waits for `events` on fd until the deadline; false (errno ETIMEDOUT) when it passed.
bool WaitFd(int fd, short events, long long deadline) {
  for (;;) {
    long long left = deadline - NowMs();
    if (left <= 0) {
      errno = ETIMEDOUT;
      return false;
    }
    struct pollfd p = {fd, events, 0};
    int r = poll(&p, 1, static_cast<int>(left > 60000 ? 60000 : left));
    if (r > 0) return true;
    if (r < 0 && errno != EINTR) return false;
  }
}

// Where vmmd listens: its unix socket, or the parts of an http:// URL.
struct Target {
  std::string socketPath;
  std::string authority = "localhost";  // the host header: host[:port] as the URL has it
  std::string host, port = "80";
  std::string prefix;  // the URL's path, without a trailing slash
};

// Fills `to` from an http:// URL; "" when it is one, else what is wrong with it.
std::string ParseUrl(const std::string& url, Target* to) {
  if (url.compare(0, 7, "http://") != 0) return "'" + url + "' is not http:// (the shell hook, VMM_HOOK_SHELL=1, handles others)";
  std::string rest = url.substr(7);
  size_t slash = rest.find('/');
  to->authority = rest.substr(0, slash);
  to->prefix = slash == std::string::npos ? "" : rest.substr(slash);
  if (!to->prefix.empty() && to->prefix.back() == '/') to->prefix.pop_back();
  for (char c : to->authority + to->prefix) {
    // A URL from the operator, but it goes into a request line and a header.
    if (static_cast<unsigned char>(c) <= 0x20 || c == 0x7f) return "has a space or control character";
  }
  const std::string& a = to->authority;
  to->host = a;
  if (!a.empty() && a[0] == '[') {
    size_t close = a.find(']');
    if (close == std::string::npos) return "'" + url + "' has no closing ]";
    to->host = a.substr(1, close - 1);
    if (close + 1 < a.size() && a[close + 1] == ':') to->port = a.substr(close + 2);
  } else if (a.find(':') != std::string::npos) {
    to->host = a.substr(0, a.find(':'));
    to->port = a.substr(a.find(':') + 1);
  }
  return "";
}

// A connected socket to vmmd (unix socket, or host:port of an http:// URL),
// or -1 with *err set.
int Connect(const Target& to, long long deadline, std::string* err) {
  const std::string &socketPath = to.socketPath, &host = to.host, &port = to.port;
  if (!socketPath.empty()) {
    struct sockaddr_un sa;
    memset(&sa, 0, sizeof sa);
    sa.sun_family = AF_UNIX;
    if (socketPath.size() >= sizeof sa.sun_path) {
      *err = "socket path " + socketPath + " is too long";
      return -1;
    }
    memcpy(sa.sun_path, socketPath.data(), socketPath.size());
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) {
      *err = std::string("socket: ") + strerror(errno);
      return -1;
    }
    // A unix connect waits while vmmd's backlog is full, up to SO_SNDTIMEO.
    long long left = deadline - NowMs();
    struct timeval tv = {static_cast<time_t>(left / 1000), static_cast<suseconds_t>((left % 1000) * 1000)};
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    if (connect(fd, reinterpret_cast<struct sockaddr*>(&sa), sizeof sa) != 0) {
      *err = "connect " + socketPath + ": " + strerror(errno);
      close(fd);
      return -1;
    }
    return fd;
  }
  struct addrinfo hints;
  memset(&hints, 0, sizeof hints);
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  struct addrinfo* res = nullptr;
  int gai = getaddrinfo(host.c_str(), port.c_str(), &hints, &res);
  if (gai != 0) {
    *err = "resolve " + host + ": " + gai_strerror(gai);
    return -1;
  }
  int fd = -1;
  *err = "connect " + host + ":" + port + ": no address";
  for (struct addrinfo* a = res; a; a = a->ai_next) {
    fd = socket(a->ai_family, a->ai_socktype | SOCK_CLOEXEC | SOCK_NONBLOCK, a->ai_protocol);
    if (fd < 0) continue;
    int r = connect(fd, a->ai_addr, a->ai_addrlen);
    if (r != 0 && errno == EINPROGRESS && WaitFd(fd, POLLOUT, deadline)) {
      int soerr = 0;
      socklen_t len = sizeof soerr;
      r = getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &len) == 0 && soerr == 0 ? 0 : -1;
      if (r != 0) errno = soerr ? soerr : errno;
    }
    if (r == 0) break;  // Exchange waits with poll: the socket may stay non-blocking
    *err = "connect " + host + ":" + port + ": " + strerror(errno);
    close(fd);
    fd = -1;
  }
  freeaddrinfo(res);
  return fd;
}

// Sends the request and reads the whole answer (the request says
// `connection: close`). False with *err when the exchange failed.
bool Exchange(int fd, const std::string& req, long long deadline, std::string* answer, std::string* err) {
  size_t off = 0;
  while (off < req.size()) {
    if (!WaitFd(fd, POLLOUT, deadline)) {
      *err = std::string("send: ") + strerror(errno);
      return false;
    }
    ssize_t n = send(fd, req.data() + off, req.size() - off, MSG_NOSIGNAL | MSG_DONTWAIT);
    if (n < 0 && (errno == EINTR || errno == EAGAIN)) continue;
    if (n < 0) {
      *err = std::string("send: ") + strerror(errno);
      return false;
    }
    off += static_cast<size_t>(n);
  }
  char buf[4096];
  for (;;) {
    if (!WaitFd(fd, POLLIN, deadline)) {
      *err = std::string("receive: ") + strerror(errno);
      return false;
    }
    ssize_t n = recv(fd, buf, sizeof buf, MSG_DONTWAIT);
    if (n < 0 && (errno == EINTR || errno == EAGAIN)) continue;
    if (n < 0) {
      *err = std::string("receive: ") + strerror(errno);
      return false;
    }
    if (n == 0) return true;
    answer->append(buf, static_cast<size_t>(n));
    if (answer->size() > kAnswerMax) {
      *err = "answer longer than 64 KiB";
      return false;
    }
  }
}

std::string Lower(std::string s) {
  for (char& c : s)
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  return s;
}

// The status code and body of an HTTP/1.x answer (chunked bodies joined);
// status 0 when it is not one.
int ParseAnswer(const std::string& a, std::string* body) {
  size_t head = a.find("\r\n\r\n");
  if (a.compare(0, 5, "HTTP/") != 0 || head == std::string::npos) return 0;
  size_t sp = a.find(' ');
  if (sp == std::string::npos || sp + 4 > a.size()) return 0;
  int status = 0;
  for (size_t i = sp + 1; i < sp + 4; i++) {
    if (!IsDigit(static_cast<unsigned char>(a[i]))) return 0;
    status = status * 10 + (a[i] - '0');
  }
  std::string headers = Lower(a.substr(0, head));
  std::string raw = a.substr(head + 4);
  if (headers.find("\r\ntransfer-encoding: chunked") == std::string::npos) {
    *body = raw;
    return status;
  }
  size_t p = 0;
  while (p < raw.size()) {
    size_t eol = raw.find("\r\n", p);
    if (eol == std::string::npos) break;
    size_t n = strtoul(raw.substr(p, eol - p).c_str(), nullptr, 16);
    if (n == 0 || eol + 2 + n > raw.size()) break;
    body->append(raw, eol + 2, n);
    p = eol + 2 + n + 2;
  }
  return status;
}

}  // namespace

// The settings file, as the script reads it: KEY=value lines (the value
// is the rest of the line, less one trailing '=', as sh's `read` leaves
// it); only the known keys, and only where the environment has no
// non-empty value; nothing is executed. A file that cannot be read is no
// file (the script's `[ -r ]`); at most 64 KiB of it is read.
void LoadConf() {
  std::string path = Env("VMM_HOOK_CONF");
  if (path.empty()) path = "/etc/vmm/dhcp-hook.conf";
  // As for the token file: a FIFO or device in its place is not read (it
  // would hold the hook, and dnsmasq's script queue behind it).
  int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
  if (fd < 0) return;
  struct stat st;
  if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    close(fd);
    Log("settings file " + path + " is not a regular file; not read");
    return;
  }
  std::string text;
  char buf[4096];
  while (text.size() < 65536) {
    ssize_t n = read(fd, buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    text.append(buf, static_cast<size_t>(n));
  }
  close(fd);
  static const char* const kKeys[] = {"VMM_SOCKET", "VMM_URL", "VMM_LEASE_TOKEN_FILE", "VMM_HOOK_TIMEOUT", "VMM_HOOK_LOG"};
  size_t at = 0;
  while (at < text.size()) {
    size_t end = text.find('\n', at);
    if (end == std::string::npos) end = text.size();
    std::string line = text.substr(at, end - at);
    at = end + 1;
    size_t eq = line.find('=');
    if (eq == std::string::npos) continue;
    std::string k = line.substr(0, eq), v = line.substr(eq + 1);
    if (!v.empty() && v.back() == '=') v.pop_back();
    for (const char* key : kKeys)
      if (k == key && Env(key).empty()) setenv(key, v.c_str(), 1);
  }
}

// VMM_HOOK_SHELL=1 or an https:// VMM_URL: the script does the report
// (curl), found beside this checkout (native/build/Release/ ->
// clients/dnsmasq-hook/). Returns only when it could not be run.
void HandToScript(char** argv) {
  char self[4096];
  ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
  if (n <= 0) {
    Log(std::string("cannot find the shell hook (for VMM_HOOK_SHELL=1 or an https:// VMM_URL): /proc/self/exe: ") + strerror(errno));
    return;
  }
  self[n] = '\0';
  std::string dir(self);
  dir.resize(dir.rfind('/'));
  std::string script = dir + "/../../../clients/dnsmasq-hook/vmm-dhcp-hook";
  setenv("VMM_HOOK_SHELL", "1", 1);  // the script must not exec this program again
  argv[0] = const_cast<char*>(script.c_str());
  execve(script.c_str(), argv, environ);
  Log("cannot run the shell hook " + script + " (for VMM_HOOK_SHELL=1 or an https:// VMM_URL): " + strerror(errno));
}

int main(int argc, char** argv) {
  // The script reads the settings file itself: each path through the two
  // reads it once, except an https:// URL that came from it.
  if (Env("VMM_HOOK_SHELL") == "1") {
    HandToScript(argv);
    return 1;
  }
  LoadConf();
  const std::string url = Env("VMM_URL");
  if (url.compare(0, 8, "https://") == 0) {
    HandToScript(argv);
    return 1;
  }
  std::string action = argc > 1 ? argv[1] : "";
  const char* a = nullptr;
  if (action == "add") a = "LEASE_ACTION_ADD";
  else if (action == "old") a = "LEASE_ACTION_OLD";
  else if (action == "del") a = "LEASE_ACTION_DEL";
  else if (action == "tftp" || action == "arp" || action == "arp-add" || action == "arp-del" || action == "relay-snoop" || action == "init") return 0;
  else {
    Log("usage: vmm-dhcp-hook add|old|del MAC IP [HOSTNAME] (got action '" + Keep(action, 64, IsPrintable) + "')");
    return 2;
  }
  if (argc < 4) {
    Log("usage: vmm-dhcp-hook " + action + " MAC IP [HOSTNAME]");
    return 2;
  }
  std::string mac = Keep(argv[2], 64, IsMacChar);
  std::string ip = Keep(argv[3], 15, IsIpChar);
  std::string hostArg = argc > 4 ? argv[4] : "";
  std::string host = Keep(hostArg.empty() ? Env("DNSMASQ_SUPPLIED_HOSTNAME") : hostArg, 253, IsNameChar);
  std::string iface = Keep(Env("DNSMASQ_INTERFACE"), 15, IsNameChar);
  std::string expiresEnv = Env("DNSMASQ_LEASE_EXPIRES");
  std::string expires = Keep(expiresEnv.empty() ? "0" : expiresEnv, 12, IsDigit);
  if (expires.empty()) expires = "0";
  std::string body = std::string("{\"action\":\"") + a + "\",\"mac\":\"" + mac + "\",\"ip\":\"" + ip + "\",\"hostname\":\"" + host +
                     "\",\"expiresUnix\":\"" + expires + "\",\"interface\":\"" + iface + "\"}";

  std::string token;
  std::string tokenFile = Env("VMM_LEASE_TOKEN_FILE");
  if (!tokenFile.empty() && !ReadToken(tokenFile, &token)) return 1;

  // curl --max-time: the whole exchange; a timeout that is not a positive
  // number of seconds is curl's error too.
  std::string tv = Env("VMM_HOOK_TIMEOUT");
  if (tv.empty()) tv = "5";
  char* endp = nullptr;
  double secs = strtod(tv.c_str(), &endp);
  if (endp == tv.c_str() || *endp != '\0' || !(secs > 0) || secs > 86400) {
    Log(action + " " + mac + " " + ip + ": vmmd unreachable: VMM_HOOK_TIMEOUT '" + tv + "' is not a number of seconds");
    return 1;
  }
  long long deadline = NowMs() + static_cast<long long>(secs * 1000);

  Target to;
  if (!url.empty()) {
    std::string bad = ParseUrl(url, &to);
    if (!bad.empty()) {
      Log(action + " " + mac + " " + ip + ": vmmd unreachable: VMM_URL " + bad);
      return 1;
    }
  } else {
    to.socketPath = Env("VMM_SOCKET");
    if (to.socketPath.empty()) to.socketPath = "/var/lib/vmm/vmmd.sock";
  }

  std::string req = "POST " + to.prefix + kPath + " HTTP/1.1\r\nhost: " + to.authority +
                    "\r\ncontent-type: application/json\r\nconnect-protocol-version: 1\r\ncontent-length: " +
                    std::to_string(body.size()) + "\r\n" + (token.empty() ? "" : "authorization: Bearer " + token + "\r\n") +
                    "connection: close\r\n\r\n" + body;
  std::string err, answer;
  int fd = Connect(to, deadline, &err);
  if (fd < 0 || !Exchange(fd, req, deadline, &answer, &err)) {
    if (fd >= 0) close(fd);
    Log(action + " " + mac + " " + ip + ": vmmd unreachable: " + err);
    return 1;
  }
  close(fd);
  std::string resp;
  int status = ParseAnswer(answer, &resp);
  if (status != 200) {
    for (char& c : resp)
      if (c == '\n' || c == '\r') c = ' ';
    Log(action + " " + mac + " " + ip + " refused (HTTP " + (status ? std::to_string(status) : std::string("000")) + "): " + resp.substr(0, 1024));
    return 1;
  }
  Log(action + " " + mac + " " + ip + (host.empty() ? "" : " (" + host + ")") + " reported");
  return 0;
}
