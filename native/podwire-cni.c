/*
 * podwire's CNI plugin as the runtime executes it (/opt/cni/bin/podwire): a small native client
 * that hands the command to the node agent over its unix socket and prints the agent's answer
 * with the agent's exit status, so a pod start pays no Node.js start-up. The agent runs the same
 * plugin code (src/cni/dispatch.ts) on the same IPAM files and locks.
 *
 * The socket is the config's "agentSocket" (controlPlane.agentSocket in the conflist the agent
 * installs). When the config names none, or no agent answers there (no socket, refused, or an
 * agent without the CNI server: 404), the client execs the Node plugin beside itself
 * ("podwire-node" in the same directory), which does
 * the work in-process with the same result. When the agent goes away in the middle of a request
 * (the connection ends before a whole answer), an ADD is undone through the Node plugin (a DEL
 * of the same container) and the answer is CNI error 11, try again later; the runtime's retry
 * converges. Wire format: src/agent/cni-server.ts.
 *
 * Build: cc -O2 -Wall -Wextra -o podwire-cni native/podwire-cni.c (scripts/bootstrap, npm run
 * build:native). Only libc.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#define STDIN_LIMIT (16 << 20)
#define ANSWER_LIMIT (16 << 20)
#define AGENT_TIMEOUT_S 300
#define FALLBACK_NAME "podwire-node"

extern char **environ;

struct buf {
  char *p;
  size_t len, cap;
};

static void put(struct buf *b, const char *s, size_t n) {
  if (b->len + n + 1 > b->cap) {
    size_t cap = b->cap ? b->cap : 4096;
    while (b->len + n + 1 > cap) cap *= 2;
    char *p = realloc(b->p, cap);
    if (!p) {
      fputs("{\"cniVersion\":\"1.1.0\",\"code\":5,\"msg\":\"podwire CNI client: out of memory\"}\n", stdout);
      exit(1);
    }
    b->p = p;
    b->cap = cap;
  }
  memcpy(b->p + b->len, s, n);
  b->len += n;
  b->p[b->len] = 0;
}

static void puts_(struct buf *b, const char *s) { put(b, s, strlen(s)); }

/* A JSON string literal of s[0..n). Bytes >= 0x80 pass through (UTF-8). */
static void put_json_string(struct buf *b, const char *s, size_t n) {
  put(b, "\"", 1);
  for (size_t i = 0; i < n; i++) {
    unsigned char c = (unsigned char)s[i];
    if (c == '"' || c == '\\') {
      char e[2] = {'\\', (char)c};
      put(b, e, 2);
    } else if (c < 0x20) {
      char e[8];
      snprintf(e, sizeof e, "\\u%04x", c);
      put(b, e, 6);
    } else {
      put(b, (const char *)&s[i], 1);
    }
  }
  put(b, "\"", 1);
}

static char cni_version[32] = "1.1.0";

/* A CNI error on stdout (SPEC.md "Error"), exit status 1. */
static void fail(int code, const char *msg, const char *fmt, ...) {
  char details[1024];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(details, sizeof details, fmt, ap);
  va_end(ap);
  struct buf out = {0};
  puts_(&out, "{\"cniVersion\":");
  put_json_string(&out, cni_version, strlen(cni_version));
  char c[32];
  snprintf(c, sizeof c, ",\"code\":%d,\"msg\":", code);
  puts_(&out, c);
  put_json_string(&out, msg, strlen(msg));
  puts_(&out, ",\"details\":");
  put_json_string(&out, details, strlen(details));
  puts_(&out, "}\n");
  fwrite(out.p, 1, out.len, stdout);
  fflush(stdout);
  exit(1);
}

/*
 * The string value of the first "key" in a JSON text, at any depth (the config is the runtime's:
 * podwire's keys are unique in it). Escapes \" \\ \/ are decoded; a value with others is refused
 * (NULL), as is one longer than max-1.
 */
static int json_string_value(const char *json, size_t n, const char *key, char *out, size_t max) {
  size_t klen = strlen(key);
  for (size_t i = 0; i + klen + 2 <= n; i++) {
    if (json[i] != '"' || memcmp(json + i + 1, key, klen) != 0 || json[i + 1 + klen] != '"') continue;
    /* a key: the quote before it must not be escaped, and ':' must follow */
    if (i > 0 && json[i - 1] == '\\') continue;
    size_t j = i + 2 + klen;
    while (j < n && (json[j] == ' ' || json[j] == '\t' || json[j] == '\n' || json[j] == '\r')) j++;
    if (j >= n || json[j] != ':') continue;
    j++;
    while (j < n && (json[j] == ' ' || json[j] == '\t' || json[j] == '\n' || json[j] == '\r')) j++;
    if (j >= n || json[j] != '"') return 0;
    j++;
    size_t o = 0;
    while (j < n && json[j] != '"') {
      char c = json[j++];
      if (c == '\\') {
        if (j >= n) return 0;
        c = json[j++];
        if (c != '"' && c != '\\' && c != '/') return 0;
      }
      if (o + 1 >= max) return 0;
      out[o++] = c;
    }
    if (j >= n) return 0;
    out[o] = 0;
    return 1;
  }
  return 0;
}

static struct buf read_stdin(void) {
  struct buf in = {0};
  char chunk[65536];
  for (;;) {
    ssize_t r = read(0, chunk, sizeof chunk);
    if (r < 0 && errno == EINTR) continue;
    if (r < 0) fail(5, "cannot read the network config from stdin", "read: %s; the runtime must write the config to stdin and close it", strerror(errno));
    if (r == 0) break;
    if (in.len + (size_t)r > STDIN_LIMIT) fail(6, "the network config on stdin is too large", "larger than %d bytes", STDIN_LIMIT);
    put(&in, chunk, (size_t)r);
  }
  if (!in.p) put(&in, "", 0);
  return in;
}

/* The Node plugin beside this binary: <dir of /proc/self/exe>/podwire-node. */
static void fallback_path(char *out, size_t max) {
  char self[PATH_MAX];
  ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
  if (n <= 0) fail(5, "podwire CNI client: cannot find its own path", "readlink /proc/self/exe: %s", strerror(errno));
  self[n] = 0;
  char *slash = strrchr(self, '/');
  *slash = 0;
  if ((size_t)snprintf(out, max, "%s/%s", self, FALLBACK_NAME) >= max) fail(5, "podwire CNI client: path too long", "%s", self);
}

/* stdin again for a child: the config in a memfd at offset 0 on fd 0. */
static void stdin_from(const struct buf *in) {
  int fd = memfd_create("podwire-cni-stdin", 0);
  if (fd < 0) fail(5, "podwire CNI client: memfd_create failed", "%s", strerror(errno));
  for (size_t off = 0; off < in->len;) {
    ssize_t w = write(fd, in->p + off, in->len - off);
    if (w < 0 && errno == EINTR) continue;
    if (w < 0) fail(5, "podwire CNI client: cannot buffer stdin", "%s", strerror(errno));
    off += (size_t)w;
  }
  lseek(fd, 0, SEEK_SET);
  if (dup2(fd, 0) < 0) fail(5, "podwire CNI client: dup2 failed", "%s", strerror(errno));
  close(fd);
}

/* Replaces this process with the Node plugin (same environment, same stdin). */
static void exec_fallback(const struct buf *in, const char *why) {
  char path[PATH_MAX];
  fallback_path(path, sizeof path);
  stdin_from(in);
  char *argv[] = {path, NULL};
  execve(path, argv, environ);
  fail(5, "podwire CNI client: no agent answered and the Node plugin cannot run", "%s; exec %s: %s", why, path, strerror(errno));
}

/* Runs the Node plugin as a DEL of this container (undoing an ADD the agent may have half done); its output is dropped. */
static int undo_add(const struct buf *in) {
  char path[PATH_MAX];
  fallback_path(path, sizeof path);
  pid_t pid = fork();
  if (pid < 0) return -1;
  if (pid == 0) {
    stdin_from(in);
    int null = open("/dev/null", O_WRONLY);
    if (null >= 0) dup2(null, 1);
    setenv("CNI_COMMAND", "DEL", 1);
    char *argv[] = {path, NULL};
    execve(path, argv, environ);
    _exit(127);
  }
  int status;
  while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {}
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

static int send_all(int fd, const char *p, size_t n) {
  while (n > 0) {
    ssize_t w = send(fd, p, n, MSG_NOSIGNAL);
    if (w < 0 && errno == EINTR) continue;
    if (w < 0) return -1;
    p += w;
    n -= (size_t)w;
  }
  return 0;
}

/* The value of header `name` (case-insensitive) in the head [p, end), copied to out; 0 if absent. */
static int header(const char *p, const char *end, const char *name, char *out, size_t max) {
  size_t nl = strlen(name);
  while (p < end) {
    const char *eol = memmem(p, (size_t)(end - p), "\r\n", 2);
    if (!eol) eol = end;
    if ((size_t)(eol - p) > nl && strncasecmp(p, name, nl) == 0 && p[nl] == ':') {
      const char *v = p + nl + 1;
      while (v < eol && (*v == ' ' || *v == '\t')) v++;
      size_t len = (size_t)(eol - v);
      if (len >= max) len = max - 1;
      memcpy(out, v, len);
      out[len] = 0;
      return 1;
    }
    p = eol + 2;
  }
  return 0;
}

/* The body of a chunked answer ([hex size CRLF data CRLF]... 0 CRLF CRLF) into out; 1 when it was all there. */
static int dechunk(const char *p, size_t n, struct buf *out) {
  size_t i = 0;
  for (;;) {
    const char *eol = memmem(p + i, n - i, "\r\n", 2);
    if (!eol) return 0;
    char *end;
    unsigned long size = strtoul(p + i, &end, 16);
    if (end == p + i) return 0;
    i = (size_t)(eol - p) + 2;
    if (size == 0) return 1;
    if (size > n - i || n - i - size < 2) return 0;
    put(out, p + i, size);
    i += size + 2;
  }
}

int main(void) {
  signal(SIGPIPE, SIG_IGN);
  struct buf in = read_stdin();
  char v[sizeof cni_version];
  if (json_string_value(in.p, in.len, "cniVersion", v, sizeof v)) memcpy(cni_version, v, sizeof v);

  char sock[sizeof(((struct sockaddr_un *)0)->sun_path)];
  if (!json_string_value(in.p, in.len, "agentSocket", sock, sizeof sock)) exec_fallback(&in, "the config names no agentSocket");

  int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) exec_fallback(&in, "socket(AF_UNIX) failed");
  struct sockaddr_un addr = {.sun_family = AF_UNIX};
  memcpy(addr.sun_path, sock, strlen(sock) + 1);
  if (connect(fd, (struct sockaddr *)&addr, sizeof addr) < 0) {
    char why[512];
    snprintf(why, sizeof why, "no agent at %s (%s)", sock, strerror(errno));
    close(fd);
    exec_fallback(&in, why);
  }
  struct timeval tv = {.tv_sec = AGENT_TIMEOUT_S};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);

  const char *command = getenv("CNI_COMMAND");
  int is_add = command && strcmp(command, "ADD") == 0;
  struct buf body = {0};
  puts_(&body, "{\"env\":{");
  int first = 1;
  for (char **e = environ; *e; e++) {
    if (strncmp(*e, "CNI_", 4) != 0) continue;
    const char *eq = strchr(*e, '=');
    if (!eq) continue;
    if (!first) put(&body, ",", 1);
    first = 0;
    put_json_string(&body, *e, (size_t)(eq - *e));
    put(&body, ":", 1);
    put_json_string(&body, eq + 1, strlen(eq + 1));
  }
  puts_(&body, "},\"stdin\":");
  put_json_string(&body, in.p, in.len);
  puts_(&body, "}");
  char head[256];
  int hn = snprintf(head, sizeof head, "POST /v1/cni HTTP/1.1\r\nHost: podwire-agent\r\nContent-Type: application/json\r\nContent-Length: %zu\r\nConnection: close\r\n\r\n", body.len);

  struct buf ans = {0};
  /* A send that fails (the agent answered early and closed, or died) still reads what came back:
   * whether the answer is whole decides below. */
  if (send_all(fd, head, (size_t)hn) == 0) send_all(fd, body.p, body.len);
  int broken = 0, eof = 0;
  char chunk[65536];
  for (;;) {
    ssize_t r = recv(fd, chunk, sizeof chunk, 0);
    if (r < 0 && errno == EINTR) continue;
    if (r == 0) eof = 1;
    if (r <= 0) break; /* EOF, or a reset / time-out: judged by what arrived */
    if (ans.len + (size_t)r > ANSWER_LIMIT) { broken = 1; break; }
    put(&ans, chunk, (size_t)r);
  }
  close(fd);

  /* A whole answer: status line, head, and the body Content-Length says, or all its chunks. */
  const char *hend = ans.p ? memmem(ans.p, ans.len, "\r\n\r\n", 4) : NULL;
  char val[64];
  int status = 0;
  size_t blen = 0;
  int whole = 0;
  struct buf dechunked = {0};
  const char *b = NULL;
  if (!broken && hend && sscanf(ans.p, "HTTP/1.%*d %d", &status) == 1) {
    b = hend + 4;
    size_t avail = (size_t)(ans.p + ans.len - b);
    if (header(ans.p, hend, "transfer-encoding", val, sizeof val) && strncasecmp(val, "chunked", 7) == 0) {
      whole = dechunk(b, avail, &dechunked);
      b = dechunked.p ? dechunked.p : "";
      blen = dechunked.len;
    } else if (header(ans.p, hend, "content-length", val, sizeof val)) {
      blen = strtoul(val, NULL, 10);
      whole = avail >= blen;
    } else {
      /* neither: the body ends where the connection did (we asked for Connection: close) */
      blen = avail;
      whole = eof;
    }
  }
  if (!whole) {
    const char *what = command ? command : "the command";
    if (is_add) {
      int undo = undo_add(&in);
      fail(11, "the podwire agent went away during ADD; try again later", "no whole answer from %s; the ADD was undone (DEL %s)", sock, undo == 0 ? "succeeded" : "failed: the runtime's DEL will finish it");
    }
    fail(11, "the podwire agent went away during the request; try again later", "no whole answer from %s to %s", sock, what);
  }
  /* 404: an agent without the CNI server (--cni-server off, or older): nothing ran there. */
  if (status == 404) exec_fallback(&in, "the agent serves no /v1/cni (podwire-agent --cni-server off)");
  if (status != 200) fail(status >= 500 ? 11 : 4, "the podwire agent refused the CNI request", "HTTP %d from %s: %.*s", status, sock, (int)(blen > 400 ? 400 : blen), b);
  int code = 1;
  if (header(ans.p, hend, "x-cni-exit", val, sizeof val)) code = atoi(val);
  fwrite(b, 1, blen, stdout);
  fflush(stdout);
  return code == 0 ? 0 : 1;
}
