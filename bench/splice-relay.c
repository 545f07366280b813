// A plain C splice relay, the reference peer of bench/main.ts (built by it
// with cc): one process, one epoll loop, edge-triggered, a pipe per
// direction, splice(2) socket -> pipe -> socket, half-close propagated.
// Nothing else: no buffers in user space, no limits, no counters.
//
//   splice-relay LPORT THOST TPORT [LPORT THOST TPORT ...]
//       listens on 127.0.0.1:LPORT and relays each connection to THOST:TPORT
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

struct half {
  int src, dst;
  int p[2];
  size_t inpipe;
  int eof, shut;
};

// epoll data: a listener (kind 0) or one side of a connection (kind 1).
struct tag {
  int kind;
  int fd;
  void* p;
};

struct conn {
  int c, g;
  int connecting, dead;
  struct half up, down;
  struct tag ct, gt;
  struct conn* next_dead;
};

struct lst {
  int fd;
  struct sockaddr_in target;
  struct tag t;
};

static int ep;
static struct conn* dead;  // freed after the event batch that closed them

static void die(const char* what) {
  perror(what);
  exit(1);
}

static void close_conn(struct conn* k) {
  if (k->dead) return;
  k->dead = 1;
  close(k->c);
  close(k->g);
  for (struct half* h = &k->up; h <= &k->down; h++) {
    if (h->p[0] >= 0) close(h->p[0]);
    if (h->p[1] >= 0) close(h->p[1]);
  }
  k->next_dead = dead;
  dead = k;
}

// Moves what it can in one direction; -1 on error.
static int pump(struct half* h) {
  for (;;) {
    if (h->inpipe > 0) {
      ssize_t n = splice(h->p[0], NULL, h->dst, NULL, h->inpipe, SPLICE_F_MOVE | SPLICE_F_NONBLOCK);
      if (n > 0) {
        h->inpipe -= (size_t)n;
        continue;
      }
      if (n < 0 && errno == EAGAIN) return 0;
      return -1;
    }
    if (h->eof) {
      if (!h->shut) shutdown(h->dst, SHUT_WR);
      h->shut = 1;
      return 0;
    }
    ssize_t n = splice(h->src, NULL, h->p[1], NULL, 1 << 20, SPLICE_F_MOVE | SPLICE_F_NONBLOCK);
    if (n > 0) {
      h->inpipe = (size_t)n;
      continue;
    }
    if (n == 0) {
      h->eof = 1;
      continue;
    }
    if (errno == EAGAIN) return 0;
    return -1;
  }
}

static void on_conn(struct conn* k, int fd, unsigned ev) {
  if (k->dead) return;
  if (k->connecting) {
    if (fd != k->g) return;
    int err = 0;
    socklen_t l = sizeof err;
    getsockopt(k->g, SOL_SOCKET, SO_ERROR, &err, &l);
    if (err || (ev & (EPOLLERR | EPOLLHUP))) {
      struct linger lg = {1, 0};
      setsockopt(k->c, SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
      close_conn(k);
      return;
    }
    k->connecting = 0;
  }
  if (pump(&k->up) < 0 || pump(&k->down) < 0) {
    close_conn(k);
    return;
  }
  if (k->up.shut && k->down.shut) close_conn(k);
}

static void on_accept(struct lst* l) {
  for (;;) {
    int c = accept4(l->fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (c < 0) return;
    int g = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (g < 0) {
      close(c);
      continue;
    }
    int one = 1;
    setsockopt(c, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    setsockopt(g, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    struct conn* k = calloc(1, sizeof *k);
    k->c = c;
    k->g = g;
    k->connecting = 1;
    k->up.p[0] = k->up.p[1] = k->down.p[0] = k->down.p[1] = -1;
    if (pipe2(k->up.p, O_NONBLOCK | O_CLOEXEC) < 0 || pipe2(k->down.p, O_NONBLOCK | O_CLOEXEC) < 0) {
      close_conn(k);
      continue;
    }
    k->up.src = c, k->up.dst = g, k->down.src = g, k->down.dst = c;
    if (connect(g, (struct sockaddr*)&l->target, sizeof l->target) < 0 && errno != EINPROGRESS) {
      struct linger lg = {1, 0};
      setsockopt(c, SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
      close_conn(k);
      continue;
    }
    k->ct = (struct tag){1, c, k};
    k->gt = (struct tag){1, g, k};
    struct epoll_event e = {.events = EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET};
    e.data.ptr = &k->ct;
    epoll_ctl(ep, EPOLL_CTL_ADD, c, &e);
    e.data.ptr = &k->gt;
    epoll_ctl(ep, EPOLL_CTL_ADD, g, &e);
  }
}

int main(int argc, char** argv) {
  if (argc < 4 || (argc - 1) % 3 != 0) {
    fprintf(stderr, "usage: splice-relay LPORT THOST TPORT [...]\n");
    return 2;
  }
  signal(SIGPIPE, SIG_IGN);
  ep = epoll_create1(EPOLL_CLOEXEC);
  for (int i = 1; i < argc; i += 3) {
    struct lst* l = calloc(1, sizeof *l);
    l->fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    int one = 1;
    setsockopt(l->fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((unsigned short)atoi(argv[i]))};
    inet_pton(AF_INET, "127.0.0.1", &a.sin_addr);
    if (bind(l->fd, (struct sockaddr*)&a, sizeof a) < 0 || listen(l->fd, 4096) < 0) die("bind/listen");
    l->target.sin_family = AF_INET;
    l->target.sin_port = htons((unsigned short)atoi(argv[i + 2]));
    if (inet_pton(AF_INET, argv[i + 1], &l->target.sin_addr) != 1) die("target address");
    l->t = (struct tag){0, l->fd, l};
    struct epoll_event e = {.events = EPOLLIN};
    e.data.ptr = &l->t;
    epoll_ctl(ep, EPOLL_CTL_ADD, l->fd, &e);
  }
  struct epoll_event evs[256];
  for (;;) {
    int n = epoll_wait(ep, evs, 256, -1);
    for (int i = 0; i < n; i++) {
      struct tag* t = evs[i].data.ptr;
      if (t->kind == 0) on_accept(t->p);
      else on_conn(t->p, t->fd, evs[i].events);
    }
    while (dead) {
      struct conn* k = dead;
      dead = k->next_dead;
      free(k);
    }
  }
}
