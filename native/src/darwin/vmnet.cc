// macOS 26 vmnet.framework networks (vmnet_network_*), the darwin backend of
// the vmnet layer. Built only on darwin (binding.gyp OS=="mac"); it cannot be
// compiled or run on the Linux machines this project is developed and tested
// on, so everything here is UNVERIFIED (docs/vmnet.md lists what).
//
// Surface (native/vmnet.ts):
//   vmnetCreate(config)              -> External network handle
//   vmnetSubnet(handle)              -> { subnet, mask }
//   vmnetAttach(handle, mac)         -> fd (datagram socket for QEMU -netdev dgram)
//   vmnetRelease(handle)
// Errors are Error objects with `vmnetStatus` set to the vmnet_return_t value
// and a message naming the call, e.g. "vmnet_network_create: VMNET_INVALID_ARGUMENT".
#include <arpa/inet.h>
#include <dispatch/dispatch.h>
#include <fcntl.h>
#include <net/ethernet.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>
#include <vmnet/vmnet.h>

#include <string>

#include "../platform.h"

namespace vmm {
namespace {

const char* StatusName(vmnet_return_t s) {
  switch (s) {
    case VMNET_SUCCESS: return "VMNET_SUCCESS";
    case VMNET_FAILURE: return "VMNET_FAILURE";
    case VMNET_MEM_FAILURE: return "VMNET_MEM_FAILURE";
    case VMNET_INVALID_ARGUMENT: return "VMNET_INVALID_ARGUMENT";
    case VMNET_SETUP_INCOMPLETE: return "VMNET_SETUP_INCOMPLETE";
    case VMNET_INVALID_ACCESS: return "VMNET_INVALID_ACCESS";
    case VMNET_PACKET_TOO_BIG: return "VMNET_PACKET_TOO_BIG";
    case VMNET_BUFFER_EXHAUSTED: return "VMNET_BUFFER_EXHAUSTED";
    case VMNET_TOO_MANY_PACKETS: return "VMNET_TOO_MANY_PACKETS";
    case VMNET_SHARING_SERVICE_BUSY: return "VMNET_SHARING_SERVICE_BUSY";
    case VMNET_NOT_AUTHORIZED: return "VMNET_NOT_AUTHORIZED";
    default: return "VMNET_UNKNOWN";
  }
}

Napi::Error VmnetError(Napi::Env env, const char* call, vmnet_return_t s) {
  Napi::Error e = Napi::Error::New(env, std::string(call) + ": " + StatusName(s));
  e.Set("vmnetStatus", Napi::Number::New(env, static_cast<double>(s)));
  return e;
}

struct Network {
  vmnet_network_ref ref;
};

void Finalize(Napi::Env, Network* n) {
  if (n->ref != nullptr) CFRelease(n->ref);
  delete n;
}

bool ParseIn4(const std::string& s, in_addr* out) { return inet_pton(AF_INET, s.c_str(), out) == 1; }

// vmnetCreate({ mode: "host"|"shared", subnet, mask, ipv6Prefix?, mtu?,
//   dhcp: bool, nat44: bool, nat66: bool, dnsProxy: bool, routerAdvertisement: bool,
//   externalInterface?, reservations: [{ mac, ipv4 }], portForwards: [...] })
Napi::Value Create(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() != 1 || !info[0].IsObject()) throw Napi::TypeError::New(env, "Usage: vmnetCreate(config: object)");
  Napi::Object c = info[0].As<Napi::Object>();
  std::string mode = c.Get("mode").ToString();
  vmnet_return_t st = VMNET_SUCCESS;
  vmnet_network_configuration_ref cfg =
      vmnet_network_configuration_create(mode == "host" ? VMNET_HOST_MODE : VMNET_SHARED_MODE, &st);
  if (cfg == nullptr) throw VmnetError(env, "vmnet_network_configuration_create", st);
  auto fail = [&](const char* call, vmnet_return_t s) {
    CFRelease(cfg);
    throw VmnetError(env, call, s);
  };
  in_addr subnet{}, mask{};
  if (!ParseIn4(c.Get("subnet").ToString(), &subnet) || !ParseIn4(c.Get("mask").ToString(), &mask))
    fail("vmnet_network_configuration_set_ipv4_subnet", VMNET_INVALID_ARGUMENT);
  if ((st = vmnet_network_configuration_set_ipv4_subnet(cfg, &subnet, &mask)) != VMNET_SUCCESS)
    fail("vmnet_network_configuration_set_ipv4_subnet", st);
  if (c.Has("ipv6Prefix") && c.Get("ipv6Prefix").IsString()) {
    in6_addr p6{};
    if (inet_pton(AF_INET6, c.Get("ipv6Prefix").ToString().Utf8Value().c_str(), &p6) != 1)
      fail("vmnet_network_configuration_set_ipv6_prefix", VMNET_INVALID_ARGUMENT);
    if ((st = vmnet_network_configuration_set_ipv6_prefix(cfg, &p6, 64)) != VMNET_SUCCESS)
      fail("vmnet_network_configuration_set_ipv6_prefix", st);
  }
  if (c.Has("mtu") && c.Get("mtu").IsNumber()) {
    if ((st = vmnet_network_configuration_set_mtu(cfg, c.Get("mtu").ToNumber().Uint32Value())) != VMNET_SUCCESS)
      fail("vmnet_network_configuration_set_mtu", st);
  }
  if (!c.Get("dhcp").ToBoolean()) vmnet_network_configuration_disable_dhcp(cfg);
  if (!c.Get("dnsProxy").ToBoolean()) vmnet_network_configuration_disable_dns_proxy(cfg);
  if (!c.Get("nat44").ToBoolean()) vmnet_network_configuration_disable_nat44(cfg);
  if (!c.Get("nat66").ToBoolean()) vmnet_network_configuration_disable_nat66(cfg);
  if (!c.Get("routerAdvertisement").ToBoolean()) vmnet_network_configuration_disable_router_advertisement(cfg);
  if (c.Has("externalInterface") && c.Get("externalInterface").IsString()) {
    std::string ext = c.Get("externalInterface").ToString();
    if (!ext.empty() && (st = vmnet_network_configuration_set_external_interface(cfg, ext.c_str())) != VMNET_SUCCESS)
      fail("vmnet_network_configuration_set_external_interface", st);
  }
  Napi::Array res = c.Get("reservations").As<Napi::Array>();
  for (uint32_t i = 0; i < res.Length(); i++) {
    Napi::Object r = res.Get(i).As<Napi::Object>();
    ether_addr_t mac{};
    in_addr ip{};
    if (ether_aton_r(r.Get("mac").ToString().Utf8Value().c_str(), reinterpret_cast<ether_addr*>(&mac)) == nullptr ||
        !ParseIn4(r.Get("ipv4").ToString(), &ip))
      fail("vmnet_network_configuration_add_dhcp_reservation", VMNET_INVALID_ARGUMENT);
    if ((st = vmnet_network_configuration_add_dhcp_reservation(cfg, &mac, &ip)) != VMNET_SUCCESS)
      fail("vmnet_network_configuration_add_dhcp_reservation", st);
  }
  Napi::Array fwd = c.Get("portForwards").As<Napi::Array>();
  for (uint32_t i = 0; i < fwd.Length(); i++) {
    Napi::Object f = fwd.Get(i).As<Napi::Object>();
    in_addr internal{};
    if (!ParseIn4(f.Get("internalAddress").ToString(), &internal))
      fail("vmnet_network_configuration_add_port_forwarding_rule", VMNET_INVALID_ARGUMENT);
    uint8_t proto = f.Get("protocol").ToString().Utf8Value() == "udp" ? IPPROTO_UDP : IPPROTO_TCP;
    st = vmnet_network_configuration_add_port_forwarding_rule(
        cfg, proto, AF_INET, static_cast<uint16_t>(f.Get("internalPort").ToNumber().Uint32Value()),
        static_cast<uint16_t>(f.Get("listenPort").ToNumber().Uint32Value()), &internal);
    if (st != VMNET_SUCCESS) fail("vmnet_network_configuration_add_port_forwarding_rule", st);
  }
  vmnet_network_ref net = vmnet_network_create(cfg, &st);
  CFRelease(cfg);
  if (net == nullptr) throw VmnetError(env, "vmnet_network_create", st);
  // SAFETY: the External owns the network reference; Finalize releases it
  // (vmnetRelease releases it earlier and clears it).
  return Napi::External<Network>::New(env, new Network{net}, Finalize);
}

Network* Unwrap(const Napi::CallbackInfo& info, const char* usage) {
  if (info.Length() < 1 || !info[0].IsExternal()) throw Napi::TypeError::New(info.Env(), usage);
  Network* n = info[0].As<Napi::External<Network>>().Data();
  if (n->ref == nullptr) throw Napi::Error::New(info.Env(), "vmnet network already released");
  return n;
}

Napi::Value Subnet(const Napi::CallbackInfo& info) {
  Network* n = Unwrap(info, "Usage: vmnetSubnet(network)");
  in_addr subnet{}, mask{};
  vmnet_network_get_ipv4_subnet(n->ref, &subnet, &mask);
  char a[INET_ADDRSTRLEN], m[INET_ADDRSTRLEN];
  inet_ntop(AF_INET, &subnet, a, sizeof a);
  inet_ntop(AF_INET, &mask, m, sizeof m);
  Napi::Object o = Napi::Object::New(info.Env());
  o.Set("subnet", a);
  o.Set("mask", m);
  return o;
}

// Relays frames between a vmnet interface and one end of a datagram
// socketpair; the other end is returned for QEMU (-netdev dgram,local.type=fd).
Napi::Value Attach(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Network* n = Unwrap(info, "Usage: vmnetAttach(network, mac: string)");
  if (info.Length() != 2 || !info[1].IsString()) throw Napi::TypeError::New(env, "Usage: vmnetAttach(network, mac: string)");
  int sv[2];
  if (socketpair(AF_UNIX, SOCK_DGRAM, 0, sv) != 0) throw Napi::Error::New(env, std::string("socketpair: ") + strerror(errno));
  fcntl(sv[0], F_SETFD, FD_CLOEXEC);
  fcntl(sv[1], F_SETFD, FD_CLOEXEC);
  xpc_object_t desc = xpc_dictionary_create(nullptr, nullptr, 0);
  xpc_dictionary_set_string(desc, vmnet_mac_address_key, info[1].ToString().Utf8Value().c_str());
  dispatch_queue_t q = dispatch_queue_create("vmm.vmnet", DISPATCH_QUEUE_SERIAL);
  __block vmnet_return_t started = VMNET_FAILURE;
  dispatch_semaphore_t done = dispatch_semaphore_create(0);
  interface_ref iface = vmnet_interface_start_with_network(n->ref, desc, q, ^(vmnet_return_t s, xpc_object_t) {
    started = s;
    dispatch_semaphore_signal(done);
  });
  xpc_release(desc);
  dispatch_semaphore_wait(done, dispatch_time(DISPATCH_TIME_NOW, 10 * NSEC_PER_SEC));
  if (iface == nullptr || started != VMNET_SUCCESS) {
    close(sv[0]);
    close(sv[1]);
    throw VmnetError(env, "vmnet_interface_start_with_network", started);
  }
  int relay = sv[0];
  // vmnet -> QEMU
  vmnet_interface_set_event_callback(iface, VMNET_INTERFACE_PACKETS_AVAILABLE, q, ^(interface_event_t, xpc_object_t) {
    static char buf[65536];
    for (;;) {
      struct iovec iov = {buf, sizeof buf};
      struct vmpktdesc pd = {sizeof buf, &iov, 1, 0};
      int count = 1;
      if (vmnet_read(iface, &pd, &count) != VMNET_SUCCESS || count == 0) break;
      send(relay, buf, pd.vm_pkt_size, 0);
    }
  });
  // QEMU -> vmnet
  dispatch_source_t src = dispatch_source_create(DISPATCH_SOURCE_TYPE_READ, relay, 0, q);
  dispatch_source_set_event_handler(src, ^{
    static char buf[65536];
    ssize_t len = recv(relay, buf, sizeof buf, 0);
    if (len <= 0) return;
    struct iovec iov = {buf, static_cast<size_t>(len)};
    struct vmpktdesc pd = {static_cast<size_t>(len), &iov, 1, 0};
    int count = 1;
    vmnet_write(iface, &pd, &count);
  });
  dispatch_resume(src);
  // SAFETY: sv[0] stays with the relay for the life of the process (the
  // interface stops when QEMU's end closes and the daemon exits); sv[1] is
  // returned to JS, which passes it to QEMU and then closes its copy.
  return Napi::Number::New(env, sv[1]);
}

Napi::Value Release(const Napi::CallbackInfo& info) {
  Network* n = Unwrap(info, "Usage: vmnetRelease(network)");
  CFRelease(n->ref);
  n->ref = nullptr;
  return info.Env().Undefined();
}

}  // namespace

void InitVmnet(Napi::Env env, Napi::Object exports) {
  exports.Set("vmnetCreate", Napi::Function::New(env, Create));
  exports.Set("vmnetSubnet", Napi::Function::New(env, Subnet));
  exports.Set("vmnetAttach", Napi::Function::New(env, Attach));
  exports.Set("vmnetRelease", Napi::Function::New(env, Release));
}

}  // namespace vmm
