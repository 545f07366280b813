// UDP request/response load for bench/main.ts (built by it with cc).
//   udp-rr server PORT                    echo datagrams on PORT (every address) until killed
//   udp-rr client HOST PORT SECONDS N     N sockets, one request in flight each, for
//                                         SECONDS; prints "<round trips per second> <lost>"
// A request unanswered for 200 ms counts as lost and is resent. Bounded in time.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

static double now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec + ts.tv_nsec / 1e9;
}

int main(int argc, char** argv) {
  if (argc < 3) {
    fprintf(stderr, "usage: udp-rr server PORT | udp-rr client HOST PORT SECONDS N\n");
    return 2;
  }
  int server = strcmp(argv[1], "server") == 0;
  if (!server) {
    if (argc < 6) return 2;
    argv++;  // the client's arguments line up with the server's after HOST
  }
  struct sockaddr_in a;
  memset(&a, 0, sizeof a);
  a.sin_family = AF_INET;
  a.sin_port = htons((unsigned short)atoi(argv[2]));
  a.sin_addr.s_addr = htonl(INADDR_ANY);
  if (!server && inet_pton(AF_INET, argv[1], &a.sin_addr) != 1) {
    fprintf(stderr, "udp-rr: bad host %s\n", argv[1]);
    return 2;
  }
  char buf[2048];
  if (server) {
    int s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (bind(s, (struct sockaddr*)&a, sizeof a) < 0) { perror("bind"); return 1; }
    for (;;) {
      struct sockaddr_in p;
      socklen_t pl = sizeof p;
      ssize_t n = recvfrom(s, buf, sizeof buf, 0, (struct sockaddr*)&p, &pl);
      if (n > 0) sendto(s, buf, (size_t)n, 0, (struct sockaddr*)&p, pl);
    }
  }
  double secs = atof(argv[3]);
  int n = atoi(argv[4]);
  int ep = epoll_create1(EPOLL_CLOEXEC);
  int* fds = calloc((size_t)n, sizeof(int));
  double* sent = calloc((size_t)n, sizeof(double));
  const char msg[64] = "ping";
  double t0 = now(), end = t0 + secs;
  for (int i = 0; i < n; i++) {
    fds[i] = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (connect(fds[i], (struct sockaddr*)&a, sizeof a) < 0) { perror("connect"); return 1; }
    struct epoll_event ev = {.events = EPOLLIN, .data.u32 = (unsigned)i};
    epoll_ctl(ep, EPOLL_CTL_ADD, fds[i], &ev);
    send(fds[i], msg, sizeof msg, 0);
    sent[i] = now();
  }
  long done = 0, lost = 0;
  struct epoll_event evs[64];
  for (;;) {
    double t = now();
    if (t >= end) break;
    int k = epoll_wait(ep, evs, 64, 50);
    for (int j = 0; j < k; j++) {
      int i = (int)evs[j].data.u32;
      while (recv(fds[i], buf, sizeof buf, 0) > 0) done++;
      send(fds[i], msg, sizeof msg, 0);
      sent[i] = now();
    }
    t = now();
    for (int i = 0; i < n; i++)
      if (t - sent[i] > 0.2) {
        lost++;
        send(fds[i], msg, sizeof msg, 0);
        sent[i] = t;
      }
  }
  printf("%.0f %ld\n", done / (now() - t0), lost);
  return 0;
}
