/*
 * proxy.c — a loopback TCP proxy for fault-injection specs: the Lua module
 * `fsdb_testproxy`. Built only for the test suites, never installed.
 *
 *   local tp = require("fsdb_testproxy")
 *   local p = tp.start("127.0.0.1", server_port)  -- listens on 127.0.0.1:p.port
 *   tp.start("127.0.0.1", server_port, "127.9.8.7", 3306)  -- on that address
 *                         and port instead (a 127.x.y.z one), e.g. to stand
 *                         in for a server on the default port
 *   p:set("stall")        -- modes below; returns once the proxy applied it
 *   local accepted, open = p:stats()
 *   p:close()             -- also on __gc; a second close is harmless
 *
 * Modes (they apply to every open and every new connection):
 *   pass     forward both ways
 *   stall    keep forwarding client -> server, forward nothing back
 *   freeze   forward nothing either way (the client's writes back up)
 *   cut N    forward at most N more bytes server -> client on each
 *            connection, then close both of its sockets (mid-packet as a rule)
 *   drop     close every connection at once; close new ones on accept
 *   nossl    pass, but clear CLIENT_SSL in each new connection's server
 *            greeting: the server looks like one without TLS
 *   cut_before_commit   pass, but when a client sends COMMIT (a COM_QUERY
 *            starting with it), close both sockets without forwarding it:
 *            the transaction is rolled back, the client sees the
 *            connection die during COMMIT
 *   cut_after_commit    pass, but forward COMMIT and close both sockets
 *            as soon as the server answers, without forwarding its OK: the
 *            transaction is committed, the client sees the same thing
 *
 * The proxy runs in a forked child that touches no Lua state and leaves
 * with _exit: as soon as its control socket reports EOF (the parent closed
 * it or died), so it never outlives the spec. It only ever listens on a
 * loopback address (127.0.0.1 unless told another 127.x.y.z) and only
 * connects to the address it was given, which must be a loopback one.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <lauxlib.h>
#include <lua.h>

#define PROXY_MT "fsdb_testproxy"
#define MAX_PAIRS 64
#define BUF_SIZE 65536
#define CLIENT_SSL 0x0800u /* capability bit in the server greeting */

enum mode { M_PASS, M_STALL, M_CUT, M_DROP, M_NOSSL, M_FREEZE, M_CUT_BEFORE_COMMIT,
            M_CUT_AFTER_COMMIT };

/* ------------------------------------------------------------------ */
/* The child: one poll loop over the listener, the control socket and  */
/* every client/server pair. Non-blocking everywhere, one buffer per   */
/* direction, so a client that stops reading never blocks the control  */
/* socket.                                                             */

typedef struct flow {
    unsigned char buf[BUF_SIZE];
    size_t off, len; /* pending bytes: buf[off..len) */
} flow;

typedef struct pair {
    int cfd, sfd;         /* -1 when free */
    flow up, down;        /* up: client -> server, down: server -> client */
    long budget;          /* cut: bytes still allowed down; -1 = no limit */
    int greeted;          /* the server greeting went past */
    int nossl;            /* this pair rewrites the greeting */
    int commit_sent;      /* cut_after_commit: COMMIT went to the server */
} pair;

static pair pairs[MAX_PAIRS];
static enum mode mode = M_PASS;
static long cut_after = 0;
static unsigned long accepted_count = 0;
static struct sockaddr_in target;

static void set_nonblock(int fd)
{
    int fl = fcntl(fd, F_GETFL);
    if (fl >= 0)
        fcntl(fd, F_SETFL, fl | O_NONBLOCK);
}

static void close_pair(pair *p)
{
    if (p->cfd >= 0) {
        /* An abortive close (RST) would hide the cut point from the client
         * behind "connection reset"; a plain FIN is what a dying server or
         * a broken middlebox usually shows. */
        close(p->cfd);
    }
    if (p->sfd >= 0)
        close(p->sfd);
    p->cfd = p->sfd = -1;
}

static unsigned open_count(void)
{
    unsigned i, n = 0;
    for (i = 0; i < MAX_PAIRS; i++)
        if (pairs[i].cfd >= 0)
            n++;
    return n;
}

static void accept_one(int lfd)
{
    int cfd = accept(lfd, NULL, NULL), sfd, one = 1;
    unsigned i;
    pair *p = NULL;

    if (cfd < 0)
        return;
    accepted_count++;
    if (mode == M_DROP) {
        close(cfd);
        return;
    }
    for (i = 0; i < MAX_PAIRS; i++)
        if (pairs[i].cfd < 0) {
            p = &pairs[i];
            break;
        }
    sfd = socket(AF_INET, SOCK_STREAM, 0);
    if (p == NULL || sfd < 0 || connect(sfd, (struct sockaddr *)&target, sizeof target) < 0) {
        if (sfd >= 0)
            close(sfd);
        close(cfd);
        return;
    }
    setsockopt(cfd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    setsockopt(sfd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    set_nonblock(cfd);
    set_nonblock(sfd);
    memset(p, 0, sizeof *p);
    p->cfd = cfd;
    p->sfd = sfd;
    p->budget = mode == M_CUT ? cut_after : -1;
    p->nossl = mode == M_NOSSL;
}

/* The greeting: 4-byte header, protocol 10, server version (NUL ended),
 * thread id (4), scramble part 1 (8), filler (1), capabilities (2, LE). */
static void strip_ssl(unsigned char *b, size_t n)
{
    size_t i = 5;
    if (n < 5 || b[4] != 10)
        return;
    while (i < n && b[i] != 0)
        i++;
    i += 1 + 4 + 8 + 1;
    if (i + 1 < n)
        b[i + 1] &= (unsigned char)~(CLIENT_SSL >> 8);
}

/* Reads what src has into f (when f is drained). Returns -1 on EOF/error. */
static int fill(int src, flow *f, long limit)
{
    ssize_t n;
    size_t room = BUF_SIZE;
    if (f->len > f->off)
        return 0;
    if (limit >= 0 && (size_t)limit < room)
        room = (size_t)limit;
    if (room == 0)
        return 0;
    n = read(src, f->buf, room);
    if (n == 0)
        return -1;
    if (n < 0)
        return (errno == EAGAIN || errno == EINTR) ? 0 : -1;
    f->off = 0;
    f->len = (size_t)n;
    return (int)n;
}

/* Writes what f holds to dst. Returns -1 on error. */
static int drain(int dst, flow *f)
{
    ssize_t n;
    if (f->len == f->off)
        return 0;
    n = write(dst, f->buf + f->off, f->len - f->off);
    if (n < 0)
        return (errno == EAGAIN || errno == EINTR) ? 0 : -1;
    f->off += (size_t)n;
    return 0;
}

/* Whether f holds a COM_QUERY packet whose text starts with COMMIT. A
 * test client sends it in one write, so one read holds the whole header. */
static int is_commit(const flow *f)
{
    const unsigned char *b = f->buf + f->off;
    size_t n = f->len - f->off, i = 5;
    static const char word[] = "commit";
    size_t k;

    if (n < 5 || b[4] != 0x03)
        return 0;
    while (i < n && (b[i] == ' ' || b[i] == '\n' || b[i] == '\t'))
        i++;
    for (k = 0; word[k]; k++, i++)
        if (i >= n || (b[i] | 0x20) != word[k])
            return 0;
    return i == n || !((b[i] | 0x20) >= 'a' && (b[i] | 0x20) <= 'z');
}

static void apply(const char *line)
{
    unsigned i;
    if (strncmp(line, "cut_before_commit", 17) == 0) {
        mode = M_CUT_BEFORE_COMMIT;
    } else if (strncmp(line, "cut_after_commit", 16) == 0) {
        mode = M_CUT_AFTER_COMMIT;
    } else if (strncmp(line, "pass", 4) == 0) {
        mode = M_PASS;
    } else if (strncmp(line, "stall", 5) == 0) {
        mode = M_STALL;
    } else if (strncmp(line, "freeze", 6) == 0) {
        mode = M_FREEZE;
    } else if (strncmp(line, "nossl", 5) == 0) {
        mode = M_NOSSL;
    } else if (strncmp(line, "drop", 4) == 0) {
        mode = M_DROP;
        for (i = 0; i < MAX_PAIRS; i++)
            if (pairs[i].cfd >= 0)
                close_pair(&pairs[i]);
    } else if (strncmp(line, "cut ", 4) == 0) {
        mode = M_CUT;
        cut_after = strtol(line + 4, NULL, 10);
        for (i = 0; i < MAX_PAIRS; i++)
            if (pairs[i].cfd >= 0)
                pairs[i].budget = cut_after;
    }
    if (mode != M_CUT)
        for (i = 0; i < MAX_PAIRS; i++)
            pairs[i].budget = -1;
}

/* One command per line; each is answered "ok <accepted> <open>\n". */
static int control(int ctl)
{
    static char line[128];
    static size_t have = 0;
    char *nl;
    ssize_t n = read(ctl, line + have, sizeof line - 1 - have);

    if (n <= 0)
        return (n < 0 && errno == EINTR) ? 0 : -1;
    have += (size_t)n;
    line[have] = '\0';
    while ((nl = strchr(line, '\n')) != NULL) {
        char reply[64];
        int len;
        *nl = '\0';
        if (strcmp(line, "quit") == 0)
            return -1;
        apply(line);
        len = snprintf(reply, sizeof reply, "ok %lu %u\n", accepted_count, open_count());
        if (write(ctl, reply, (size_t)len) != len)
            return -1;
        have -= (size_t)(nl + 1 - line);
        memmove(line, nl + 1, have + 1);
    }
    if (have >= sizeof line - 1)
        have = 0;
    return 0;
}

static void run(int lfd, int ctl)
{
    struct pollfd fds[2 + 2 * MAX_PAIRS];
    int who[2 + 2 * MAX_PAIRS]; /* pair index * 2 + side (0 client, 1 server) */
    unsigned i;

    for (i = 0; i < MAX_PAIRS; i++)
        pairs[i].cfd = pairs[i].sfd = -1;
    for (;;) {
        nfds_t n = 2, k;
        fds[0].fd = lfd;
        fds[0].events = POLLIN;
        fds[1].fd = ctl;
        fds[1].events = POLLIN;
        for (i = 0; i < MAX_PAIRS; i++) {
            pair *p = &pairs[i];
            short ce = 0, se = 0;
            if (p->cfd < 0)
                continue;
            /* Read a side only once what it sent before went through. */
            if (p->up.len == p->up.off) {
                if (mode != M_FREEZE)
                    ce |= POLLIN;
            }
            else
                se |= POLLOUT;
            if (p->down.len == p->down.off) {
                if (mode != M_STALL && p->budget != 0)
                    se |= POLLIN;
            } else {
                ce |= POLLOUT;
            }
            if (mode == M_FREEZE)
                se &= ~POLLIN;
            fds[n].fd = p->cfd;
            fds[n].events = ce;
            who[n++] = (int)(i * 2);
            fds[n].fd = p->sfd;
            fds[n].events = se;
            who[n++] = (int)(i * 2 + 1);
        }
        for (k = 0; k < n; k++)
            fds[k].revents = 0;
        if (poll(fds, n, 1000) < 0) {
            if (errno == EINTR)
                continue;
            return;
        }
        if (fds[1].revents & (POLLIN | POLLHUP | POLLERR))
            if (control(ctl) < 0)
                return;
        if (fds[0].revents & POLLIN)
            accept_one(lfd);
        for (k = 2; k < n; k++) {
            pair *p = &pairs[who[k] / 2];
            int server_side = who[k] % 2;
            short re = fds[k].revents;
            int rc = 0;
            if (p->cfd < 0 || re == 0)
                continue;
            if (re & (POLLERR | POLLNVAL)) {
                close_pair(p);
                continue;
            }
            if (server_side) {
                if (re & POLLOUT)
                    rc = drain(p->sfd, &p->up);
                if (rc == 0 && (re & (POLLIN | POLLHUP | POLLERR)) && mode != M_STALL &&
                    mode != M_FREEZE && p->budget != 0) {
                    rc = fill(p->sfd, &p->down, p->budget);
                    if (rc > 0 && p->commit_sent) {
                        /* The server answered COMMIT: the client never
                         * sees the answer. */
                        close_pair(p);
                        continue;
                    }
                    if (rc > 0) {
                        if (p->nossl && !p->greeted)
                            strip_ssl(p->down.buf, p->down.len);
                        p->greeted = 1;
                        if (p->budget > 0)
                            p->budget -= rc;
                        rc = 0;
                    }
                }
            } else {
                if (re & POLLOUT)
                    rc = drain(p->cfd, &p->down);
                if (rc == 0 && (re & (POLLIN | POLLHUP | POLLERR)) && mode != M_FREEZE) {
                    rc = fill(p->cfd, &p->up, -1);
                    if (rc > 0 && is_commit(&p->up)) {
                        if (mode == M_CUT_BEFORE_COMMIT) {
                            close_pair(p);
                            continue;
                        }
                        if (mode == M_CUT_AFTER_COMMIT)
                            p->commit_sent = 1;
                    }
                    rc = rc < 0 ? -1 : 0;
                }
            }
            /* The cut: once the budget is spent and delivered, hang up. */
            if (rc < 0 || (p->budget == 0 && p->down.len == p->down.off))
                close_pair(p);
        }
    }
}

/* ------------------------------------------------------------------ */
/* The Lua side                                                        */

typedef struct lproxy {
    pid_t pid; /* 0 once closed */
    int ctl;
    int port;
} lproxy;

static int is_loopback(const struct in_addr *a)
{
    return (ntohl(a->s_addr) >> 24) == 127;
}

static int fail(lua_State *L, const char *what)
{
    lua_pushnil(L);
    lua_pushfstring(L, "%s: %s", what, strerror(errno));
    return 2;
}

/* start(host, port [, listen_host [, listen_port]]) -> proxy | nil, err */
static int l_start(lua_State *L)
{
    const char *host = luaL_checkstring(L, 1);
    int port = (int)luaL_checkinteger(L, 2);
    const char *lhost = luaL_optstring(L, 3, "127.0.0.1");
    int lport = (int)luaL_optinteger(L, 4, 0); /* 0: the kernel picks a free port */
    struct in_addr laddr;
    struct sockaddr_in addr;
    socklen_t alen = sizeof addr;
    int lfd, sv[2], one = 1;
    pid_t pid;
    lproxy *p;

    memset(&target, 0, sizeof target);
    target.sin_family = AF_INET;
    target.sin_port = htons((unsigned short)port);
    if (inet_pton(AF_INET, host, &target.sin_addr) != 1 || !is_loopback(&target.sin_addr))
        return luaL_argerror(L, 1, "a 127.x.y.z address");
    if (inet_pton(AF_INET, lhost, &laddr) != 1 || !is_loopback(&laddr))
        return luaL_argerror(L, 3, "a 127.x.y.z address");
    if (lport < 0 || lport > 65535)
        return luaL_argerror(L, 4, "a port number");

    p = lua_newuserdata(L, sizeof *p);
    p->pid = 0;
    p->ctl = -1;
    p->port = 0;
    luaL_getmetatable(L, PROXY_MT);
    lua_setmetatable(L, -2);

    if ((lfd = socket(AF_INET, SOCK_STREAM, 0)) < 0)
        return fail(L, "socket");
    setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    memset(&addr, 0, sizeof addr);
    addr.sin_family = AF_INET;
    addr.sin_addr = laddr;
    addr.sin_port = htons((unsigned short)lport);
    if (bind(lfd, (struct sockaddr *)&addr, sizeof addr) < 0 || listen(lfd, 64) < 0 ||
        getsockname(lfd, (struct sockaddr *)&addr, &alen) < 0) {
        close(lfd);
        return fail(L, "listen");
    }
    if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv) < 0) {
        close(lfd);
        return fail(L, "socketpair");
    }
    fflush(NULL);
    pid = fork();
    if (pid < 0) {
        close(lfd);
        close(sv[0]);
        close(sv[1]);
        return fail(L, "fork");
    }
    if (pid == 0) {
        int fd, maxfd = (int)sysconf(_SC_OPEN_MAX);
        /* Keep only our two sockets: an inherited copy of another proxy's
         * control socket would keep that proxy from ever seeing EOF, and the
         * parent's database sockets are none of our business. */
        if (maxfd < 0 || maxfd > 65536)
            maxfd = 65536;
        for (fd = 3; fd < maxfd; fd++)
            if (fd != lfd && fd != sv[1])
                close(fd);
        signal(SIGPIPE, SIG_IGN);
        set_nonblock(lfd);
        run(lfd, sv[1]);
        _exit(0);
    }
    close(lfd);
    close(sv[1]);
    p->pid = pid;
    p->ctl = sv[0];
    p->port = ntohs(addr.sin_port);
    return 1;
}

static lproxy *check(lua_State *L)
{
    lproxy *p = luaL_checkudata(L, 1, PROXY_MT);
    if (p->pid == 0)
        luaL_error(L, "attempt to use a closed proxy");
    return p;
}

/* Sends one command line, waits (5 s at most) for "ok <accepted> <open>". */
static int command(lua_State *L, lproxy *p, const char *cmd)
{
    char reply[64];
    size_t have = 0, len = strlen(cmd);
    unsigned long accepted = 0;
    unsigned open = 0;
    struct pollfd pfd;

    if (write(p->ctl, cmd, len) != (ssize_t)len)
        return luaL_error(L, "proxy control: %s", strerror(errno));
    pfd.fd = p->ctl;
    pfd.events = POLLIN;
    while (have == 0 || reply[have - 1] != '\n') {
        ssize_t n;
        if (poll(&pfd, 1, 5000) <= 0)
            return luaL_error(L, "proxy control: no answer");
        n = read(p->ctl, reply + have, sizeof reply - 1 - have);
        if (n <= 0)
            return luaL_error(L, "proxy control: closed");
        have += (size_t)n;
        if (have >= sizeof reply - 1)
            break;
    }
    reply[have] = '\0';
    if (sscanf(reply, "ok %lu %u", &accepted, &open) != 2)
        return luaL_error(L, "proxy control: bad answer");
    lua_pushinteger(L, (lua_Integer)accepted);
    lua_pushinteger(L, (lua_Integer)open);
    return 2;
}

/* p:set(mode [, n]) -> accepted, open */
static int l_set(lua_State *L)
{
    lproxy *p = check(L);
    static const char *const modes[] = { "pass", "stall", "cut", "drop", "nossl", "freeze",
                                         "cut_before_commit", "cut_after_commit", NULL };
    int m = luaL_checkoption(L, 2, NULL, modes);
    char cmd[64];
    if (m == 2)
        snprintf(cmd, sizeof cmd, "cut %ld\n", (long)luaL_checkinteger(L, 3));
    else
        snprintf(cmd, sizeof cmd, "%s\n", modes[m]);
    return command(L, p, cmd);
}

/* p:stats() -> connections accepted so far, connections open now */
static int l_stats(lua_State *L)
{
    return command(L, check(L), "stats\n");
}

static int l_port(lua_State *L)
{
    lua_pushinteger(L, check(L)->port);
    return 1;
}

/* Serves close and __gc: asks the child to leave, then makes sure. */
static int l_close(lua_State *L)
{
    lproxy *p = luaL_checkudata(L, 1, PROXY_MT);
    pid_t pid = p->pid;
    int status, i;
    if (pid == 0)
        return 0;
    p->pid = 0;
    if (write(p->ctl, "quit\n", 5) < 0) {
        /* the child is gone already; waitpid below reaps it */
    }
    close(p->ctl);
    p->ctl = -1;
    for (i = 0; i < 200; i++) {
        pid_t r = waitpid(pid, &status, WNOHANG);
        if (r == pid || (r < 0 && errno != EINTR))
            return 0;
        usleep(10000);
    }
    kill(pid, SIGKILL);
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
        ;
    return 0;
}

static int l_tostring(lua_State *L)
{
    lproxy *p = luaL_checkudata(L, 1, PROXY_MT);
    if (p->pid == 0)
        lua_pushliteral(L, "fsdb_testproxy (closed)");
    else
        lua_pushfstring(L, "fsdb_testproxy 127.0.0.1:%d (pid %d)", p->port, (int)p->pid);
    return 1;
}

int luaopen_fsdb_testproxy(lua_State *L)
{
    static const luaL_Reg methods[] = {
        {"set", l_set}, {"stats", l_stats}, {"port", l_port}, {"close", l_close}, {NULL, NULL}};
    static const luaL_Reg fns[] = {{"start", l_start}, {NULL, NULL}};

    luaL_newmetatable(L, PROXY_MT);
    lua_newtable(L);
#if LUA_VERSION_NUM < 502
    luaL_register(L, NULL, methods);
#else
    luaL_setfuncs(L, methods, 0);
#endif
    lua_setfield(L, -2, "__index");
    lua_pushcfunction(L, l_close);
    lua_setfield(L, -2, "__gc");
    lua_pushcfunction(L, l_tostring);
    lua_setfield(L, -2, "__tostring");
    lua_pop(L, 1);

    lua_newtable(L);
#if LUA_VERSION_NUM < 502
    luaL_register(L, NULL, fns);
#else
    luaL_setfuncs(L, fns, 0);
#endif
    return 1;
}
