#!/usr/bin/env node
// A stand-in for qemu-system-x86_64 in unit tests of the QEMU runner: it
// reads `-qmp unix:PATH,server=on,wait=off` from its argv, serves QMP there
// (greeting, qmp_capabilities, query-status, system_powerdown,
// human-monitor-command, quit) and writes what it was given -- its argv and
// the fds it inherited -- to fake-qemu.json in its working directory (the
// VM's directory), and each human-monitor-command line to fake-qemu-hmp.log
// there. It runs no guest. Environment knobs:
//   FAKE_QEMU_FAIL=TEXT         print TEXT on stderr and exit 1 at once
//   FAKE_QEMU_IGNORE_POWERDOWN  keep running after system_powerdown
//   FAKE_QEMU_HMP_REFUSE=TEXT   answer HMP commands containing TEXT as QEMU
//                               answers a hostfwd_add it cannot set up
import { appendFileSync, readdirSync, writeFileSync } from "node:fs";
import { createServer } from "node:net";

const argv = process.argv.slice(2);
if (process.env.FAKE_QEMU_FAIL) {
  process.stderr.write(`qemu-system-x86_64: ${process.env.FAKE_QEMU_FAIL}\n`);
  process.exit(1);
}
const qmpArg = argv[argv.indexOf("-qmp") + 1] ?? "";
const path = /^unix:([^,]+),/.exec(qmpArg)?.[1];
if (!path) {
  process.stderr.write("fake-qemu: no -qmp unix:PATH,... in argv\n");
  process.exit(2);
}
writeFileSync("fake-qemu.json", JSON.stringify({ argv, fds: readdirSync("/proc/self/fd").map(Number).sort((a, b) => a - b) }));

const server = createServer((sock) => {
  const send = (v) => sock.write(JSON.stringify(v) + "\r\n");
  send({ QMP: { version: { qemu: { major: 7, minor: 2, micro: 0 }, package: "fake" }, capabilities: [] } });
  let buf = "";
  sock.setEncoding("utf8").on("data", (d) => {
    buf += d;
    let nl;
    while ((nl = buf.indexOf("\n")) >= 0) {
      const msg = JSON.parse(buf.slice(0, nl));
      buf = buf.slice(nl + 1);
      switch (msg.execute) {
        case "query-status":
          send({ return: { status: "running", running: true }, id: msg.id });
          break;
        case "system_powerdown":
          send({ return: {}, id: msg.id });
          if (!process.env.FAKE_QEMU_IGNORE_POWERDOWN) setTimeout(() => process.exit(0), 50);
          break;
        case "quit":
          send({ return: {}, id: msg.id });
          setTimeout(() => process.exit(0), 10);
          break;
        case "human-monitor-command": {
          const line = msg.arguments?.["command-line"] ?? "";
          appendFileSync("fake-qemu-hmp.log", line + "\n");
          const refuse = process.env.FAKE_QEMU_HMP_REFUSE;
          send({ return: refuse && line.includes(refuse) ? "Could not set up host forwarding rule '" + line + "'\r\n" : "", id: msg.id });
          break;
        }
        default:
          send({ return: {}, id: msg.id });
      }
    }
  });
  sock.on("error", () => undefined);
});
server.listen(path);
