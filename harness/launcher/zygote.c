/* Zygote: loads libpython + micropython_run once, then forks MicroPython chargers on request.
 *
 * Protocol: harness/launcher/README.md. Control socket: AF_UNIX SOCK_SEQPACKET on fd 3.
 * Single-threaded on purpose: fork() and PR_SET_PDEATHSIG are only sound from one thread.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <setjmp.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#ifndef ZY_LIBPYTHON
#define ZY_LIBPYTHON ""
#endif
#ifndef ZY_MPRUN
#define ZY_MPRUN ""
#endif

#define CTL_FD 3
#define PROTO_VERSION 1
#define MAX_REQ 65536
#define MAX_ARGS 4096
#define BATCH 64

enum { OP_SPAWN = 1, OP_KILL = 2, OP_PING = 3 };
enum { EV_READY = 0x100, EV_REPLY = 0x101, EV_EXIT = 0x102 };

struct req_hdr {
    uint32_t op;
    uint32_t flags;
    uint64_t token;
};

struct event {
    uint32_t op;
    int32_t err;
    uint64_t token;
    int32_t pid;
    int32_t value;
};

typedef int (*mp_main_fn)(int, char **);

static mp_main_fn mp_main;
static pid_t self_pid;
static int sig_fd = -1;
static unsigned char req_buf[MAX_REQ];

/* Warm mode (--preload): the zygote runs a MicroPython script that imports the firmware once, then
 * serves from inside that runtime; every child returns into the script with the modules loaded. */
#define WARM_MAGIC "\x01" "evfw-zygote-serve" /* split: \x01e would read as one hex escape */
static const char *preload_script;
static const char *preload_heap = "256k";
static jmp_buf warm_child;
static int serving;
static char rom_env[64];

/* ---- set of live child pids: open addressing, linear probing, backward-shift delete ---- */

static pid_t *set_slots;
static size_t set_cap, set_len;

static size_t set_home(pid_t pid)
{
    return ((uint32_t)pid * 2654435761u) & (set_cap - 1);
}

static size_t set_find(pid_t pid)
{
    size_t i = set_home(pid);
    while (set_slots[i] && set_slots[i] != pid)
        i = (i + 1) & (set_cap - 1);
    return i;
}

static int set_has(pid_t pid)
{
    return pid > 0 && set_slots[set_find(pid)] == pid;
}

static int set_add(pid_t pid);

static int set_grow(void)
{
    pid_t *old = set_slots;
    size_t old_cap = set_cap;
    pid_t *fresh = calloc(old_cap ? old_cap * 2 : 1024, sizeof(pid_t));
    if (!fresh)
        return -1;
    set_slots = fresh;
    set_cap = old_cap ? old_cap * 2 : 1024;
    set_len = 0;
    for (size_t i = 0; i < old_cap; i++)
        if (old[i])
            set_add(old[i]);
    free(old);
    return 0;
}

static int set_add(pid_t pid)
{
    if ((set_len + 1) * 2 > set_cap && set_grow() < 0)
        return -1;
    size_t i = set_find(pid);
    if (set_slots[i] != pid) {
        set_slots[i] = pid;
        set_len++;
    }
    return 0;
}

static void set_del(pid_t pid)
{
    size_t i = set_find(pid);
    if (set_slots[i] != pid)
        return;
    set_slots[i] = 0;
    set_len--;
    for (size_t j = (i + 1) & (set_cap - 1); set_slots[j]; j = (j + 1) & (set_cap - 1)) {
        size_t h = set_home(set_slots[j]);
        /* Move slot j back into the hole at i unless its home lies cyclically in (i, j]. */
        int stays = (i <= j) ? (i < h && h <= j) : (i < h || h <= j);
        if (!stays) {
            set_slots[i] = set_slots[j];
            set_slots[j] = 0;
            i = j;
        }
    }
}

/* ---- small helpers ---- */

static void die(const char *what, const char *detail)
{
    fprintf(stderr, "zygote: %s%s%s\n", what, detail ? ": " : "", detail ? detail : "");
    exit(3);
}

static void close_from(unsigned int lowfd)
{
#ifdef SYS_close_range
    if (syscall(SYS_close_range, lowfd, ~0u, 0) == 0)
        return;
#endif
    long max = sysconf(_SC_OPEN_MAX);
    for (long fd = lowfd; fd < (max > 0 ? max : 65536); fd++)
        close((int)fd);
}

static void kill_all_and_exit(int code)
{
    for (size_t i = 0; i < set_cap; i++)
        if (set_slots[i]) {
            kill(-set_slots[i], SIGKILL); /* its session/process group: catches grandchildren too */
            kill(set_slots[i], SIGKILL);
        }
    while (waitpid(-1, NULL, 0) > 0 || errno == EINTR)
        ;
    exit(code);
}

static void send_event(uint32_t op, uint64_t token, pid_t pid, int32_t value, int err)
{
    struct event ev = {op, err, token, pid, value};
    for (;;) {
        ssize_t n = send(CTL_FD, &ev, sizeof ev, MSG_NOSIGNAL);
        if (n >= 0)
            return;
        if (errno != EINTR)
            kill_all_and_exit(0); /* supervisor gone */
    }
}

/* ---- the child side of a spawn ---- */

struct spawn_req {
    const char *name;
    char **argv;
    int argc;
    char **env;
    int envc;
    int console_fd;
    int dir_fd;
};

static void reset_signals(void)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = SIG_DFL;
    for (int sig = 1; sig < NSIG; sig++)
        if (sig != SIGKILL && sig != SIGSTOP)
            sigaction(sig, &sa, NULL);
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, NULL);
}

static void apply_env(char **env, int envc)
{
    for (int i = 0; i < envc; i++) {
        char *eq = strchr(env[i], '=');
        if (!eq) {
            unsetenv(env[i]);
            continue;
        }
        *eq = '\0';
        setenv(env[i], eq + 1, 1);
        *eq = '=';
    }
}

static void child_fail(const char *what)
{
    dprintf(2, "zygote child: %s: %s\n", what, strerror(errno));
    _exit(127);
}

static void run_child(const struct spawn_req *r)
{
    setsid();
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (getppid() != self_pid)
        _exit(127); /* the zygote died between fork() and prctl() */
    if (preload_script) {
        /* Keep the handlers the runtime installed (SIGINT, SIGPIPE...); only SIGCHLD was blocked. */
        sigset_t none;
        sigemptyset(&none);
        sigprocmask(SIG_SETMASK, &none, NULL);
    } else {
        reset_signals();
    }
    for (int fd = 0; fd < 3; fd++)
        if (dup2(r->console_fd, fd) < 0)
            _exit(127);
    if (r->dir_fd >= 0 && fchdir(r->dir_fd) < 0)
        child_fail("chdir");
    close_from(3);
    apply_env(r->env, r->envc);
    if (r->name[0])
        prctl(PR_SET_NAME, r->name, 0, 0, 0);
    if (preload_script) {
        setenv("EVFW_WARM_CHILD", "1", 1); /* how the script knows it returned as a charger */
        longjmp(warm_child, 1);            /* back into the script's os.system() call */
    }
    int rc = mp_main(r->argc, r->argv);
    fflush(NULL);
    _exit(rc);
}

/* ---- request parsing ---- */

/* Splits `n` NUL-terminated strings starting at p; returns the end pointer or NULL if short. */
static char *take_strings(char *p, char *end, char **out, int n)
{
    for (int i = 0; i < n; i++) {
        char *z = memchr(p, '\0', (size_t)(end - p));
        if (!z)
            return NULL;
        out[i] = p;
        p = z + 1;
    }
    return p;
}

static int parse_spawn(char *body, size_t len, struct spawn_req *r, char **strs)
{
    uint32_t counts[2];
    if (len < sizeof counts)
        return EINVAL;
    memcpy(counts, body, sizeof counts);
    if (counts[0] < 1 || counts[0] > MAX_ARGS || counts[1] > MAX_ARGS)
        return E2BIG;
    char *end = body + len;
    int total = 2 + (int)counts[0] + (int)counts[1];
    if (!take_strings(body + sizeof counts, end, strs, total))
        return EINVAL;
    r->name = strs[0];
    r->argc = (int)counts[0];
    r->envc = (int)counts[1];
    r->env = strs + 2 + counts[0];
    static char *argv_copy[MAX_ARGS + 1];
    memcpy(argv_copy, strs + 2, sizeof(char *) * counts[0]); /* argv needs a NULL end */
    argv_copy[counts[0]] = NULL;
    r->argv = argv_copy;
    return 0;
}

static int do_spawn(char *body, size_t len, int console_fd, pid_t *out_pid)
{
    static char *strs[2 * MAX_ARGS + 2];
    struct spawn_req r;
    if (console_fd < 0)
        return EBADF;
    int err = parse_spawn(body, len, &r, strs);
    if (err)
        return err;
    r.console_fd = console_fd;
    r.dir_fd = -1;
    const char *cwd = strs[1];
    if (cwd[0] && (r.dir_fd = open(cwd, O_PATH | O_DIRECTORY | O_CLOEXEC)) < 0)
        return errno;
    if (set_len + 1 > set_cap / 2 && set_grow() < 0) {
        close(r.dir_fd);
        return ENOMEM;
    }
    pid_t pid = fork();
    if (pid == 0)
        run_child(&r);
    err = pid < 0 ? errno : 0;
    if (r.dir_fd >= 0)
        close(r.dir_fd);
    if (pid > 0)
        set_add(pid);
    *out_pid = pid;
    return err;
}

static int do_kill(const char *body, size_t len, pid_t *pid)
{
    int32_t a[2];
    if (len < sizeof a)
        return EINVAL;
    memcpy(a, body, sizeof a);
    *pid = a[0];
    if (!set_has(a[0]))
        return ESRCH;
    return kill(a[0], a[1]) < 0 ? errno : 0;
}

/* ---- the event loop ---- */

/* Receives one request; returns 0 on EOF, -1 when drained, 1 when a request was handled. */
static int handle_one_request(void)
{
    union {
        struct cmsghdr h;
        char buf[CMSG_SPACE(sizeof(int) * 8)];
    } cbuf;
    struct iovec iov = {req_buf, sizeof req_buf};
    struct msghdr mh = {0};
    mh.msg_iov = &iov;
    mh.msg_iovlen = 1;
    mh.msg_control = cbuf.buf;
    mh.msg_controllen = sizeof cbuf.buf;
    ssize_t n = recvmsg(CTL_FD, &mh, MSG_DONTWAIT | MSG_CMSG_CLOEXEC);
    if (n < 0)
        return (errno == EAGAIN || errno == EINTR) ? -1 : 0;
    if (n == 0)
        return 0;
    int fd = -1, nfds = 0;
    for (struct cmsghdr *c = CMSG_FIRSTHDR(&mh); c; c = CMSG_NXTHDR(&mh, c)) {
        if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS)
            continue;
        int cnt = (int)((c->cmsg_len - CMSG_LEN(0)) / sizeof(int));
        for (int i = 0; i < cnt; i++) {
            int got;
            memcpy(&got, CMSG_DATA(c) + i * sizeof(int), sizeof got);
            if (nfds++ == 0)
                fd = got;
            else
                close(got);
        }
    }
    struct req_hdr h = {0};
    int err = EINVAL;
    pid_t pid = 0;
    int32_t value = 0;
    if ((size_t)n >= sizeof h && !(mh.msg_flags & (MSG_TRUNC | MSG_CTRUNC))) {
        memcpy(&h, req_buf, sizeof h);
        char *body = (char *)req_buf + sizeof h;
        size_t blen = (size_t)n - sizeof h;
        if (h.op == OP_SPAWN)
            err = nfds == 1 ? do_spawn(body, blen, fd, &pid) : EBADF;
        else if (h.op == OP_KILL)
            err = do_kill(body, blen, &pid);
        else if (h.op == OP_PING) {
            err = 0;
            pid = self_pid;
            value = (int32_t)set_len;
        }
    } else if ((size_t)n >= sizeof h) {
        memcpy(&h, req_buf, sizeof h);
        err = (mh.msg_flags & MSG_TRUNC) ? E2BIG : EBADF;
    }
    if (fd >= 0)
        close(fd);
    if (h.token)
        send_event(EV_REPLY, h.token, pid, value, err);
    return 1;
}

static void reap_children(void)
{
    struct signalfd_siginfo si;
    while (read(sig_fd, &si, sizeof si) == sizeof si)
        ;
    int status;
    pid_t pid;
    while ((pid = waitpid(-1, &status, WNOHANG)) > 0) {
        set_del(pid);
        send_event(EV_EXIT, 0, pid, status, 0);
    }
}

static void serve(void)
{
    struct pollfd pf[2] = {{CTL_FD, POLLIN, 0}, {sig_fd, POLLIN, 0}};
    for (;;) {
        if (poll(pf, 2, -1) < 0) {
            if (errno == EINTR)
                continue;
            die("poll", strerror(errno));
        }
        if (pf[1].revents)
            reap_children();
        if (pf[0].revents & POLLIN) {
            /* Bounded batch: a burst of spawns must not delay exit reports for long. */
            for (int i = 0; i < BATCH; i++) {
                int r = handle_one_request();
                if (r == 0)
                    kill_all_and_exit(0);
                if (r < 0)
                    break;
            }
        } else if (pf[0].revents & (POLLHUP | POLLERR | POLLNVAL)) {
            kill_all_and_exit(0);
        }
    }
}

/* ---- startup ---- */

struct options {
    const char *libpython;
    const char *mprun;
    const char *rom;
    const char *preload;
    const char *heap;
    int check;
};

static void usage(void)
{
    fprintf(stderr, "usage: zygote [--libpython PATH] [--mprun PATH] [--rom FILE] "
                    "[--preload SCRIPT [--heap SIZE]] [--check]\n");
    exit(2);
}

static void parse_args(int argc, char **argv, struct options *o)
{
    o->libpython = ZY_LIBPYTHON;
    o->mprun = ZY_MPRUN;
    o->rom = NULL;
    o->preload = NULL;
    o->heap = "256k";
    o->check = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "--check"))
            o->check = 1;
        else if (i + 1 < argc && !strcmp(a, "--libpython"))
            o->libpython = argv[++i];
        else if (i + 1 < argc && !strcmp(a, "--mprun"))
            o->mprun = argv[++i];
        else if (i + 1 < argc && !strcmp(a, "--rom"))
            o->rom = argv[++i];
        else if (i + 1 < argc && !strcmp(a, "--preload"))
            o->preload = argv[++i];
        else if (i + 1 < argc && !strcmp(a, "--heap"))
            o->heap = argv[++i];
        else
            usage();
    }
}

static void load_libraries(const struct options *o)
{
    if (!o->libpython[0] || !o->mprun[0])
        die("library paths unknown", "pass --libpython and --mprun");
    /* libpython is never initialised: it only provides the symbols the pybind module links to. */
    if (!dlopen(o->libpython, RTLD_NOW | RTLD_GLOBAL))
        die("cannot load libpython", dlerror());
    void *mp = dlopen(o->mprun, RTLD_NOW | RTLD_GLOBAL);
    if (!mp)
        die("cannot load micropython_run", dlerror());
    mp_main = (mp_main_fn)dlsym(mp, "micropython_unix_main");
    if (!mp_main)
        die("micropython_unix_main not exported", dlerror());
}

/* Maps the ROM image read-only; children find it through EVFW_ROM=<hex address>:<length>. */
static void map_rom(const char *path, char *env_out, size_t env_len)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    struct stat st;
    if (fd < 0 || fstat(fd, &st) < 0)
        die("cannot open ROM image", strerror(errno));
    if (st.st_size <= 0)
        die("ROM image is empty", path);
    void *addr = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_SHARED | MAP_POPULATE, fd, 0);
    if (addr == MAP_FAILED)
        die("cannot map ROM image", strerror(errno));
    close(fd);
    snprintf(env_out, env_len, "0x%lx:%lld", (unsigned long)addr, (long long)st.st_size);
    setenv("EVFW_ROM", env_out, 1);
}

static void check_control_socket(void)
{
    int type = 0;
    socklen_t len = sizeof type;
    if (getsockopt(CTL_FD, SOL_SOCKET, SO_TYPE, &type, &len) < 0 || type != SOCK_SEQPACKET)
        die("fd 3 must be an AF_UNIX SOCK_SEQPACKET socket", NULL);
}

static void ensure_std_fds(void)
{
    for (int fd = 0; fd < 3; fd++)
        if (fcntl(fd, F_GETFD) < 0) {
            int n = open("/dev/null", O_RDWR);
            if (n >= 0 && n != fd) {
                dup2(n, fd);
                close(n);
            }
        }
}

static void send_ready(void)
{
    char msg[sizeof(struct event) + 128];
    struct event ev = {EV_READY, 0, PROTO_VERSION, self_pid, 0};
    memcpy(msg, &ev, sizeof ev);
    int extra = snprintf(msg + sizeof ev, sizeof msg - sizeof ev, "%s%c%s", preload_script ? "c-warm" : "c", '\0', rom_env);
    if (send(CTL_FD, msg, sizeof ev + (size_t)extra + 1, MSG_NOSIGNAL) < 0)
        exit(0);
}

/* The warm script calls os.system(WARM_MAGIC) once its modules are loaded; the runtime's system()
 * resolves to this one (the binary exports it, -rdynamic). The zygote serves from here and never
 * returns; each forked child returns 0 into the script. Any other command goes to libc's system(). */
int system(const char *cmd)
{
    if (cmd && preload_script && !serving && !strcmp(cmd, WARM_MAGIC)) {
        serving = 1;
        if (setjmp(warm_child) == 0) {
            send_ready();
            serve();
        }
        return 0;
    }
    int (*libc_system)(const char *) = (int (*)(const char *))dlsym(RTLD_NEXT, "system");
    return libc_system ? libc_system(cmd) : -1;
}

static void run_preload(void)
{
    char heap_opt[64];
    snprintf(heap_opt, sizeof heap_opt, "heapsize=%s", preload_heap);
    char *argv[] = {"micropython", "-X", heap_opt, (char *)preload_script, NULL};
    int rc = mp_main(4, argv);
    fflush(NULL);
    if (serving)
        _exit(rc); /* a charger whose script ended (the zygote itself never returns while serving) */
    /* The script ended without serving (an import failed): its traceback is on stderr. */
    die("warm script ended before serving", rc ? "see the traceback above" : preload_script);
}

int main(int argc, char **argv)
{
    struct options o;
    parse_args(argc, argv, &o);
    load_libraries(&o);
    if (o.check)
        return 0;
    ensure_std_fds();
    check_control_socket();
    close_from(CTL_FD + 1); /* nothing the supervisor leaked may reach the chargers */
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    prctl(PR_SET_NAME, "evfw-zygote", 0, 0, 0);
    self_pid = getpid();
    if (o.rom)
        map_rom(o.rom, rom_env, sizeof rom_env);
    sigset_t chld;
    sigemptyset(&chld);
    sigaddset(&chld, SIGCHLD);
    sigprocmask(SIG_BLOCK, &chld, NULL);
    sig_fd = signalfd(-1, &chld, SFD_NONBLOCK | SFD_CLOEXEC);
    if (sig_fd < 0 || set_grow() < 0)
        die("startup", strerror(errno));
    if (o.preload) {
        preload_script = o.preload;
        preload_heap = o.heap;
        run_preload();
    }
    send_ready();
    serve();
    return 0;
}
