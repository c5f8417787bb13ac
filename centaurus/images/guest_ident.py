"""Source of the guest's ``cl-ident`` helper: applies a clone's identity in ONE small exec.

``cl-ident HOSTNAME EPOCH SEEDHEX MAC|- IP/PREFIX|- GATEWAY|- LINKADDR``
  sethostname; clock_settime; RNDADDENTROPY + RNDRESEEDCRNG; eth0: MAC, up, address, an on-link
  host route to LINKADDR, default route via GATEWAY. Exit 0 when all of it worked.

Why a C helper and not busybox commands: on a clone restored under TCG every first execution of
a code path must be translated, so each ``ip``/``date`` fork+exec of the 1 MB busybox costs tens of
milliseconds -- the restore critical path was ~0.3 s of exactly that. This binary is a few KB,
freestanding (raw syscalls, no libc in the guest), and uses the classic ioctls (SIOCSIFHWADDR,
SIOCSIFFLAGS, SIOCSIFADDR, SIOCADDRT) instead of netlink to stay small.

The RNG part is not optional: writing to /dev/urandom only mixes bytes in; Linux 6.x reseeds its
ChaCha CRNG every 60 s, so clones of one snapshot read identical "random" bytes for up to a minute
unless RNDRESEEDCRNG forces a reseed (the runtime tests caught exactly that).
"""

IDENT_C = r"""
typedef unsigned long u64;
static long sc(long n, long a, long b, long c) {
    long r;
    __asm__ volatile("syscall" : "=a"(r) : "a"(n), "D"(a), "S"(b), "d"(c) : "rcx", "r11", "memory");
    return r;
}
struct sa { unsigned short family; unsigned char data[14]; };
struct ifr { char name[16]; union { struct sa addr; short flags; char pad[24]; } u; };
struct rte {
    unsigned long pad1; struct sa dst, gw, mask; unsigned short flags; short pad2;
    unsigned long pad3; void *pad4; short metric; char *dev; unsigned long mtu, window; unsigned short irtt;
};
static struct { int bits; int size; unsigned char buf[256]; } ent;
static char eth0[] = "eth0";

/* The compiler may emit calls to these even in freestanding code (struct zeroing). */
void *memset(void *d, int c, unsigned long n) { volatile char *p = d; while (n--) *p++ = (char)c; return d; }
void *memcpy(void *d, const void *s, unsigned long n) {
    volatile char *o = d; const volatile char *i = s; while (n--) *o++ = *i++; return d;
}
static int nib(char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}
static int len(const char *s) { int n = 0; while (s[n]) n++; return n; }
static void zero(void *p, int n) { char *c = p; while (n--) *c++ = 0; }
static int dash(const char *s) { return s[0] == '-' && s[1] == 0; }
static long num(const char **p) {
    long v = 0;
    while (**p >= '0' && **p <= '9') v = v * 10 + (*(*p)++ - '0');
    return v;
}
/* "a.b.c.d[/n]" -> network-order address, *prefix = n (or 32) */
static int ip4(const char *s, unsigned *out, int *prefix) {
    unsigned char b[4];
    for (int i = 0; i < 4; i++) {
        long v = num(&s);
        if (v > 255 || (i < 3 && *s++ != '.')) return -1;
        b[i] = (unsigned char)v;
    }
    *prefix = 32;
    if (*s == '/') { s++; *prefix = (int)num(&s); }
    *out = b[0] | b[1] << 8 | b[2] << 16 | (unsigned)b[3] << 24;
    return *prefix <= 32 ? 0 : -1;
}
static void inaddr(struct sa *a, unsigned addr) {
    zero(a, sizeof *a);
    a->family = 2; /* AF_INET; port stays 0 */
    a->data[2] = addr & 255; a->data[3] = addr >> 8 & 255;
    a->data[4] = addr >> 16 & 255; a->data[5] = addr >> 24;
}
static unsigned mask(int prefix) {
    unsigned m = prefix ? 0xffffffffu << (32 - prefix) : 0; /* host order */
    return (m >> 24) | (m >> 8 & 0xff00) | (m << 8 & 0xff0000) | (m << 24);
}
static int route(long fd, unsigned dst, unsigned gw, int prefix, unsigned short flags) {
    struct rte r;
    zero(&r, sizeof r);
    inaddr(&r.dst, dst); inaddr(&r.gw, gw); inaddr(&r.mask, mask(prefix));
    r.flags = flags; r.dev = eth0;
    long rc = sc(16, fd, 0x890B, (long)&r);                              /* SIOCADDRT */
    return rc == 0 || rc == -17 ? 0 : -1;                                  /* EEXIST is fine */
}

void cmain(long *sp) {
    long argc = sp[0];
    char **argv = (char **)(sp + 1);
    int bad = 0;
    if (argc < 8) sc(60, 2, 0, 0);
    char *host = argv[1], *seed = argv[3], *mac = argv[4], *cidr = argv[5], *gw = argv[6], *link = argv[7];
    if (sc(170, (long)host, len(host), 0) != 0) bad |= 1;                /* sethostname */
    const char *e = argv[2];
    long ts[2] = {num(&e), 0};
    if (sc(227, 0, (long)ts, 0) != 0) bad |= 2;                           /* clock_settime REALTIME */
    int n = 0;
    while (seed[0] && seed[1] && n < 256 && nib(seed[0]) >= 0 && nib(seed[1]) >= 0) {
        ent.buf[n++] = (unsigned char)(nib(seed[0]) << 4 | nib(seed[1]));
        seed += 2;
    }
    ent.size = n; ent.bits = n * 8;
    long r = sc(2, (long)"/dev/urandom", 2, 0);                           /* open O_RDWR */
    if (r < 0 || n == 0 || sc(16, r, 0x40085203L, (long)&ent) != 0        /* RNDADDENTROPY */
        || sc(16, r, 0x5207L, 0) != 0) bad |= 4;                          /* RNDRESEEDCRNG */
    long s = sc(41, 2, 2, 0);                                             /* socket(AF_INET, DGRAM) */
    if (s < 0) sc(60, bad | 8, 0, 0);
    struct ifr q;
    if (!dash(mac)) {
        zero(&q, sizeof q); q.name[0] = 'e'; q.name[1] = 't'; q.name[2] = 'h'; q.name[3] = '0';
        q.u.addr.family = 1;                                              /* ARPHRD_ETHER */
        for (int i = 0; i < 6; i++)
            q.u.addr.data[i] = (unsigned char)(nib(mac[3 * i]) << 4 | nib(mac[3 * i + 1]));
        sc(16, s, 0x8924, (long)&q);                    /* SIOCSIFHWADDR; EBUSY when up with it already */
    }
    zero(&q, sizeof q); q.name[0] = 'e'; q.name[1] = 't'; q.name[2] = 'h'; q.name[3] = '0';
    if (sc(16, s, 0x8913, (long)&q) != 0) bad |= 16;                      /* SIOCGIFFLAGS */
    q.u.flags |= 1;                                                       /* IFF_UP */
    if (sc(16, s, 0x8914, (long)&q) != 0) bad |= 16;                      /* SIOCSIFFLAGS */
    if (!dash(cidr)) {
        unsigned a, g, l; int p, gp, lp;
        if (ip4(cidr, &a, &p) != 0) sc(60, bad | 32, 0, 0);
        zero(&q, sizeof q); q.name[0] = 'e'; q.name[1] = 't'; q.name[2] = 'h'; q.name[3] = '0';
        inaddr(&q.u.addr, a);
        if (sc(16, s, 0x8916, (long)&q) != 0) bad |= 32;                  /* SIOCSIFADDR */
        inaddr(&q.u.addr, mask(p));
        if (sc(16, s, 0x891c, (long)&q) != 0) bad |= 32;                  /* SIOCSIFNETMASK */
        if (ip4(link, &l, &lp) == 0 && route(s, l, 0, 32, 1 | 4) != 0) bad |= 64;   /* UP|HOST */
        if (!dash(gw) && ip4(gw, &g, &gp) == 0 && route(s, 0, g, 0, 1 | 2) != 0) bad |= 64; /* UP|GATEWAY */
    }
    sc(60, bad, 0, 0);
}
__asm__(".globl _start\n_start:\n mov %rsp, %rdi\n and $-16, %rsp\n call cmain\n hlt\n");
"""
