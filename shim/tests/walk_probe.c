/* Calls libc's directory walkers (scandir, glob, ftw/nftw, fts) on a test
 * tree and prints everything they report. Run once on plain libc and once
 * with libovl_shim.so preloaded: the two outputs must be identical.
 *
 * usage: walk_probe all         (in the directory that holds t/, x/, l/, p/)
 *        walk_probe view DIR    (sorted names of DIR's tree, by each walker)
 * p/ is a chain of directories with long names, deeper than PATH_MAX.
 * With WALK_PROBE_SHIM set, first checks that every walker resolves to it.
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <fts.h>
#include <ftw.h>
#include <glob.h>
#include <grp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static char type_char(mode_t m)
{
	switch (m & S_IFMT) {
	case S_IFREG: return 'f';
	case S_IFDIR: return 'd';
	case S_IFLNK: return 'l';
	case S_IFIFO: return 'p';
	case S_IFCHR: return 'c';
	default: return '?';
	}
}

static void show_stat(const struct stat *st)
{
	printf(" [%c ino=%llu size=%lld nlink=%lu]", type_char(st->st_mode),
	       (unsigned long long)st->st_ino, (long long)st->st_size,
	       (unsigned long)st->st_nlink);
}

static void show_cwd(void)
{
	char buf[4096];
	if (getcwd(buf, sizeof buf))
		printf(" cwd=%s", buf);
	else
		printf(" cwd=?%d", errno);
}

/* ---------------------------------------------------------------- scandir */

static int skip_dot_names(const struct dirent *d)
{
	errno = EIO; /* must not leak out */
	return d->d_name[0] != '.';
}

static void show_list(const char *what, int n, struct dirent **list, int err)
{
	printf("%s: n=%d", what, n);
	if (n < 0) {
		printf(" errno=%d\n", err);
		return;
	}
	printf(" errno=%d\n", err);
	for (int i = 0; i < n; i++) {
		printf("  %s type=%d ino=%llu reclen=%d\n", list[i]->d_name,
		       list[i]->d_type, (unsigned long long)list[i]->d_ino,
		       list[i]->d_reclen);
		free(list[i]);
	}
	free(list);
}

static void probe_scandir(void)
{
	struct dirent **list;
	struct dirent64 **list64;
	int n;

	errno = 99;
	n = scandir("t", &list, NULL, alphasort);
	show_list("scandir t alphasort", n, list, errno);
	errno = 99;
	n = scandir("t", &list, NULL, NULL);
	show_list("scandir t unsorted", n, list, errno);
	errno = 0;
	n = scandir("t", &list, skip_dot_names, versionsort);
	show_list("scandir t filter versionsort", n, list, errno);
	n = scandir("t/empty", &list, skip_dot_names, alphasort);
	printf("scandir empty: n=%d list=%s\n", n, n == 0 && list == NULL ? "NULL" : "set");
	errno = 7;
	n = scandir64("t/sub", &list64, NULL, alphasort64);
	show_list("scandir64 t/sub", n, (struct dirent **)list64, errno);
	n = scandirat(AT_FDCWD, "t/sub", &list, NULL, alphasort);
	show_list("scandirat cwd t/sub", n, list, errno);
	int fd = open("t", O_RDONLY | O_DIRECTORY);
	n = scandirat(fd, "sub/deep", &list, NULL, alphasort);
	show_list("scandirat fd sub/deep", n, list, errno);
	n = scandirat64(fd, ".", &list64, NULL, NULL);
	show_list("scandirat64 fd .", n, (struct dirent **)list64, errno);
	n = scandirat(fd, "", &list, NULL, NULL);
	show_list("scandirat fd empty", n, list, errno);
	n = scandirat(fd, "a.txt", &list, NULL, NULL);
	show_list("scandirat fd a.txt", n, list, errno);
	close(fd);
	const char *bad[] = { "nonexistent", "t/a.txt", "", "t/noread", "l/me" };
	for (unsigned i = 0; i < sizeof bad / sizeof *bad; i++) {
		char what[64];
		snprintf(what, sizeof what, "scandir '%s'", bad[i]);
		n = scandir(bad[i], &list, NULL, alphasort);
		show_list(what, n, list, errno);
	}
	n = scandir("t/nosearch", &list, NULL, alphasort);
	show_list("scandir t/nosearch", n, list, errno);
}

/* ------------------------------------------------------------------- glob */

static int glob_errors(const char *path, int err)
{
	printf("  errfunc %s %d\n", path, err);
	return 0;
}

static int alt_calls;
static void *alt_opendir(const char *p) { alt_calls++; return opendir(p); }
static struct dirent *alt_readdir(void *d) { alt_calls++; return readdir(d); }
static void alt_closedir(void *d) { alt_calls++; closedir(d); }
static int alt_stat(const char *p, struct stat *st) { alt_calls++; return stat(p, st); }
static int alt_lstat(const char *p, struct stat *st) { alt_calls++; return lstat(p, st); }

#define SENTINEL(n) ((void *)(0x5000 + (n)))

static void show_glob(const char *pattern, int flags, int r, glob_t *g, int sentinels)
{
	printf("glob '%s' flags=%#x: r=%d pathc=%zu flags=%#x", pattern, flags, r,
	       g->gl_pathc, g->gl_flags);
	if (sentinels)
		printf(" fields=%s",
		       g->gl_closedir == SENTINEL(1) && (void *)g->gl_readdir == SENTINEL(2) &&
		       g->gl_opendir == SENTINEL(3) && (void *)g->gl_lstat == SENTINEL(4) &&
		       (void *)g->gl_stat == SENTINEL(5) ? "intact" : "CHANGED");
	printf("\n");
	for (size_t i = 0; i < g->gl_offs; i++)
		printf("  [%zu] %s\n", i, g->gl_pathv && g->gl_pathv[i] ? "set" : "NULL");
	for (size_t i = 0; i < g->gl_pathc; i++)
		printf("  %s\n", g->gl_pathv[g->gl_offs + i]);
}

static void one_glob(const char *pattern, int flags)
{
	glob_t g;
	memset(&g, 0, sizeof g);
	g.gl_flags = 0x40000000;
	g.gl_closedir = SENTINEL(1);
	g.gl_readdir = SENTINEL(2);
	g.gl_opendir = SENTINEL(3);
	g.gl_lstat = SENTINEL(4);
	g.gl_stat = SENTINEL(5);
	if (flags & GLOB_DOOFFS)
		g.gl_offs = 2;
	int r = glob(pattern, flags, (flags & GLOB_ERR) ? NULL : glob_errors, &g);
	show_glob(pattern, flags, r, &g, 1);
	if (r == 0 || r == GLOB_NOMATCH)
		globfree(&g);
}

static void probe_glob(void)
{
	const char *patterns[] = {
		"t/*", "t/*.txt", "t/*/*", "t/s*/*", "t/[ab]*", "t/ln_*", "t/ln_dangle",
		"t/nothing*", "t/nothing", "t/sub/deep/*/*/f", "t/*/", "t/.*", "t/noread/*",
		"t/nosearch/*", "t/nosearch/hidden_f", "t/*/x.c", "t/\\a.txt", "t/{a,b}.txt",
		"t/sub/../a*", "*/*.txt", "t/ln_dir/*",
	};
	const int flagsets[] = {
		0, GLOB_MARK, GLOB_ONLYDIR, GLOB_NOCHECK, GLOB_PERIOD, GLOB_NOSORT,
		GLOB_BRACE, GLOB_ERR, GLOB_NOESCAPE, GLOB_DOOFFS | GLOB_MARK,
		GLOB_NOMAGIC, GLOB_MARK | GLOB_ONLYDIR | GLOB_PERIOD,
	};
	for (unsigned i = 0; i < sizeof patterns / sizeof *patterns; i++)
		for (unsigned j = 0; j < sizeof flagsets / sizeof *flagsets; j++)
			one_glob(patterns[i], flagsets[j]);

	glob_t g;
	memset(&g, 0, sizeof g);
	int r = glob("t/*.txt", 0, NULL, &g);
	r = r * 10 + glob("t/sub/*", GLOB_APPEND, NULL, &g);
	show_glob("append", GLOB_APPEND, r, &g, 0);
	globfree(&g);

	memset(&g, 0, sizeof g);
	g.gl_opendir = alt_opendir;
	g.gl_readdir = (struct dirent *(*)(void *))alt_readdir;
	g.gl_closedir = alt_closedir;
	g.gl_stat = alt_stat;
	g.gl_lstat = alt_lstat;
	alt_calls = 0;
	r = glob("t/*/*", GLOB_ALTDIRFUNC | GLOB_MARK, NULL, &g);
	show_glob("altdirfunc", GLOB_ALTDIRFUNC, r, &g, 0);
	printf("  own functions called: %s\n", alt_calls > 0 ? "yes" : "no");
	globfree(&g);

	if (chdir("t") == 0) {
		one_glob("*", 0);
		one_glob("sub/*", GLOB_MARK);
		one_glob("../t/a*", 0);
		if (chdir("..") != 0)
			printf("chdir back failed\n");
	}
	glob64_t g64;
	memset(&g64, 0, sizeof g64);
	r = glob64("t/sub/*", GLOB_MARK, NULL, &g64);
	printf("glob64: r=%d pathc=%zu flags=%#x first=%s\n", r, g64.gl_pathc, g64.gl_flags,
	       g64.gl_pathc ? g64.gl_pathv[0] : "-");
	globfree64(&g64);
}

/* -------------------------------------------------------------- ftw, nftw */

static const char *stop_at;     /* path that makes the callback return stop_with */
static int stop_with;
static const char *skip_at;     /* path that gets FTW_SKIP_SUBTREE */
static const char *skip_sib_at; /* path that gets FTW_SKIP_SIBLINGS */
static int with_cwd;

static int nftw_cb(const char *path, const struct stat *st, int flag, struct FTW *f)
{
	printf("  %s flag=%d base=%d level=%d", path, flag, f->base, f->level);
	if (flag != FTW_NS)
		show_stat(st);
	if (with_cwd)
		show_cwd();
	printf("\n");
	if (stop_at && strcmp(path, stop_at) == 0)
		return stop_with;
	if (skip_at && strcmp(path, skip_at) == 0)
		return FTW_SKIP_SUBTREE;
	if (skip_sib_at && strcmp(path, skip_sib_at) == 0)
		return FTW_SKIP_SIBLINGS;
	return 0;
}

static int ftw_cb(const char *path, const struct stat *st, int flag)
{
	printf("  %s flag=%d", path, flag);
	if (flag != FTW_NS)
		show_stat(st);
	printf("\n");
	if (stop_at && strcmp(path, stop_at) == 0)
		return stop_with;
	return 0;
}

static void one_nftw(const char *dir, int fds, int flags)
{
	with_cwd = flags & FTW_CHDIR;
	errno = 0;
	printf("nftw '%s' fds=%d flags=%#x\n", dir, fds, flags);
	int r = nftw(dir, nftw_cb, fds, flags);
	int e = errno;
	printf(" -> %d errno=%d", r, e);
	show_cwd();
	printf("\n");
}

static void probe_ftw(void)
{
	const int flagsets[] = {
		0, FTW_PHYS, FTW_DEPTH, FTW_PHYS | FTW_DEPTH, FTW_CHDIR,
		FTW_CHDIR | FTW_PHYS | FTW_DEPTH, FTW_MOUNT, FTW_MOUNT | FTW_PHYS,
		FTW_ACTIONRETVAL, FTW_CHDIR | FTW_DEPTH,
	};
	const int fdsets[] = { 1, 2, 20 };
	for (unsigned i = 0; i < sizeof flagsets / sizeof *flagsets; i++)
		for (unsigned j = 0; j < sizeof fdsets / sizeof *fdsets; j++) {
			one_nftw("t", fdsets[j], flagsets[i]);
			/* x/sys leads to /sys: only walks that stay on x's device */
			if (flagsets[i] & (FTW_MOUNT | FTW_PHYS))
				one_nftw("x", fdsets[j], flagsets[i]);
		}
	char abs[4096];
	if (!getcwd(abs, sizeof abs - 8))
		abs[0] = 0;
	strcat(abs, "/t/sub");
	const char *starts[] = {
		"t/", "./t//", abs, "t/a.txt", "t/ln_dangle", "t/ln_dir", "t/ln_file",
		"nonexistent", "", "l", "t/noread", "t/nosearch", "t/fifo", "t/sub/deep/d1",
	};
	for (unsigned i = 0; i < sizeof starts / sizeof *starts; i++) {
		one_nftw(starts[i], 3, 0);
		one_nftw(starts[i], 3, FTW_PHYS);
		one_nftw(starts[i], 1, FTW_CHDIR | FTW_DEPTH);
		one_nftw(starts[i], 2, FTW_CHDIR | FTW_PHYS);
	}
	one_nftw("t", 3, 0x100);
	one_nftw("p", 3, 0);
	one_nftw("p", 1, FTW_CHDIR);
	one_nftw("p", 2, FTW_PHYS | FTW_DEPTH);

	stop_at = "t/sub/x.c";
	stop_with = 42;
	one_nftw("t", 5, 0);
	one_nftw("t", 1, FTW_CHDIR);
	stop_with = FTW_STOP;
	one_nftw("t", 5, FTW_ACTIONRETVAL);
	one_nftw("t", 1, FTW_ACTIONRETVAL | FTW_CHDIR);
	stop_at = NULL;
	skip_at = "t/sub";
	one_nftw("t", 5, FTW_ACTIONRETVAL);
	one_nftw("t", 5, FTW_ACTIONRETVAL | FTW_DEPTH | FTW_CHDIR);
	one_nftw("t", 5, 0); /* without ACTIONRETVAL, 2 stops the walk */
	skip_at = NULL;
	skip_sib_at = "t/sub/deep/d1";
	one_nftw("t", 2, FTW_ACTIONRETVAL | FTW_CHDIR);
	one_nftw("t/sub/deep/d1", 2, FTW_ACTIONRETVAL);
	skip_sib_at = "t/sub/x.c";
	one_nftw("t", 2, FTW_ACTIONRETVAL);
	skip_sib_at = NULL;

	const char *ftw_starts[] = { "t", "t/ln_dangle", "t/a.txt", "nonexistent", "l" };
	for (unsigned i = 0; i < sizeof ftw_starts / sizeof *ftw_starts; i++)
		for (int fds = 1; fds <= 4; fds += 3) {
			errno = 0;
			printf("ftw '%s' fds=%d\n", ftw_starts[i], fds);
			int r = ftw(ftw_starts[i], ftw_cb, fds);
			printf(" -> %d errno=%d\n", r, errno);
		}
	stop_at = "t/b.txt";
	stop_with = -5;
	printf("ftw64 stop\n");
	int r = ftw64("t", (__ftw64_func_t)ftw_cb, 2);
	printf(" -> %d\n", r);
	stop_at = NULL;
	printf("nftw64\n");
	r = nftw64("t/sub", (__nftw64_func_t)nftw_cb, 2, FTW_PHYS);
	printf(" -> %d\n", r);
}

/* -------------------------------------------------------------------- fts */

static int by_name(const FTSENT **a, const FTSENT **b)
{
	return strcmp((*a)->fts_name, (*b)->fts_name);
}

static int by_name_reverse(const FTSENT **a, const FTSENT **b)
{
	return -strcmp((*a)->fts_name, (*b)->fts_name);
}

static void show_ent(const char *tag, FTS *fts, FTSENT *p, int options)
{
	/* Before the first fts_read, the roots' path and its length are not
	 * set yet (libc leaves them uninitialised). */
	int unset = strcmp(tag, "root") == 0;
	printf("  %s info=%d path=%s acc=%s name=%s namelen=%d pathlen=%d level=%d err=%d",
	       tag, p->fts_info, unset ? "-" : p->fts_path, p->fts_accpath, p->fts_name,
	       p->fts_namelen, unset ? -1 : p->fts_pathlen, p->fts_level, p->fts_errno);
	if (p->fts_info == FTS_D || p->fts_info == FTS_DP || p->fts_info == FTS_DC)
		printf(" ino=%llu nlink=%lu", (unsigned long long)p->fts_ino,
		       (unsigned long)p->fts_nlink);
	if (p->fts_info == FTS_DC)
		printf(" cycle=%s", p->fts_cycle->fts_path);
	if (!(options & FTS_NOSTAT) && p->fts_info != FTS_NSOK)
		show_stat(p->fts_statp);
	if (p->fts_parent)
		printf(" parent=%s", p->fts_parent->fts_name);
	printf(" flags=%d opts=%#x bufsize=%d", p->fts_flags, fts->fts_options, fts->fts_pathlen);
	show_cwd();
	printf("\n");
}

enum { PLAIN, SET_SKIP, SET_AGAIN, SET_FOLLOW, CHILDREN, NAMES, ROOTKIDS };

static void one_fts(char *const *roots, int options, int sorted, int action)
{
	printf("fts");
	for (char *const *r = roots; *r; r++)
		printf(" '%s'", *r);
	printf(" options=%#x sorted=%d action=%d\n", options, sorted, action);
	errno = 0;
	FTS *fts = fts_open(roots, options,
			    sorted == 1 ? by_name : sorted == 2 ? by_name_reverse : NULL);
	if (!fts) {
		printf(" open failed errno=%d\n", errno);
		return;
	}
	printf(" open errno=%d pathlen=%d\n", errno, fts->fts_pathlen);
	if (action == ROOTKIDS) {
		for (FTSENT *c = fts_children(fts, 0); c; c = c->fts_link)
			show_ent("root", fts, c, options);
	}
	int again = 0;
	FTSENT *p;
	while ((p = fts_read(fts)) != NULL) {
		show_ent("read", fts, p, options);
		if (action == SET_SKIP && p->fts_info == FTS_D && strcmp(p->fts_name, "sub") == 0)
			fts_set(fts, p, FTS_SKIP);
		if (action == SET_AGAIN && !again && strcmp(p->fts_name, "a.txt") == 0) {
			again = 1;
			fts_set(fts, p, FTS_AGAIN);
		}
		if (action == SET_FOLLOW && (p->fts_info == FTS_SL || p->fts_info == FTS_SLNONE) &&
		    p->fts_number == 0) {
			p->fts_number = 1;
			fts_set(fts, p, FTS_FOLLOW);
		}
		if ((action == CHILDREN || action == NAMES) && p->fts_info == FTS_D) {
			errno = 5;
			FTSENT *c = fts_children(fts, action == NAMES ? FTS_NAMEONLY : 0);
			printf("   children errno=%d\n", errno);
			for (; c; c = c->fts_link) {
				show_ent("child", fts, c, action == NAMES ? FTS_NOSTAT : options);
				if (strcmp(c->fts_name, "b.txt") == 0)
					fts_set(fts, c, FTS_SKIP);
			}
			show_ent("after children", fts, p, options);
		}
		if (action == CHILDREN && p->fts_info == FTS_F) {
			errno = 5;
			FTSENT *c = fts_children(fts, 0);
			printf("   children of file: %p errno=%d\n", (void *)c, errno);
		}
	}
	printf(" end errno=%d\n", errno);
	int r = fts_close(fts);
	printf(" close=%d", r);
	show_cwd();
	printf("\n");
}

static void probe_fts(void)
{
	char *t[] = { "t", NULL };
	char *x[] = { "x", NULL };
	char *many[] = { "t/sub", "t/a.txt", "nonexistent", "t/ln_dir", "t/ln_dangle",
			 "t/fifo", "./t/empty/", "t/noread", NULL };
	char *dots[] = { ".", NULL };
	char *lnroot[] = { "t/ln_dir", NULL };
	char *nosearch[] = { "t/nosearch", "t/sub/deep", NULL };
	char abs[4096];
	if (!getcwd(abs, sizeof abs - 8))
		abs[0] = 0;
	strcat(abs, "/t");
	char *absroot[] = { abs, NULL };
	char *slash_end[] = { "t/", "t/sub//", NULL };

	const int optsets[] = {
		FTS_PHYSICAL, FTS_PHYSICAL | FTS_NOCHDIR, FTS_LOGICAL,
		FTS_PHYSICAL | FTS_SEEDOT, FTS_PHYSICAL | FTS_NOSTAT,
		FTS_PHYSICAL | FTS_NOSTAT | FTS_NOCHDIR, FTS_LOGICAL | FTS_NOSTAT,
		FTS_PHYSICAL | FTS_COMFOLLOW, FTS_LOGICAL | FTS_SEEDOT,
		FTS_PHYSICAL | FTS_XDEV, FTS_LOGICAL | FTS_XDEV,
	};
	for (unsigned i = 0; i < sizeof optsets / sizeof *optsets; i++) {
		one_fts(t, optsets[i], 0, PLAIN);
		one_fts(t, optsets[i], 1, PLAIN);
		one_fts(many, optsets[i], 0, PLAIN);
		one_fts(many, optsets[i], 2, PLAIN);
		if (optsets[i] & (FTS_XDEV | FTS_PHYSICAL))
			one_fts(x, optsets[i], 1, PLAIN);
		one_fts(lnroot, optsets[i], 0, PLAIN);
		one_fts(nosearch, optsets[i], 1, PLAIN);
	}
	if (chdir("t") == 0) {
		one_fts(dots, FTS_LOGICAL, 1, PLAIN);
		one_fts(dots, FTS_PHYSICAL, 0, CHILDREN);
		if (chdir("..") != 0)
			printf("chdir back failed\n");
	}
	one_fts(absroot, FTS_PHYSICAL, 1, PLAIN);
	one_fts(absroot, FTS_PHYSICAL, 1, CHILDREN);
	one_fts(slash_end, FTS_PHYSICAL, 0, PLAIN);
	one_fts(slash_end, FTS_PHYSICAL | FTS_NOCHDIR, 0, PLAIN);
	const int actions[] = { SET_SKIP, SET_AGAIN, SET_FOLLOW, CHILDREN, NAMES, ROOTKIDS };
	for (unsigned i = 0; i < sizeof actions / sizeof *actions; i++) {
		one_fts(t, FTS_PHYSICAL, 1, actions[i]);
		one_fts(t, FTS_PHYSICAL | FTS_NOCHDIR, 0, actions[i]);
		one_fts(many, FTS_LOGICAL, 1, actions[i]);
		one_fts(t, FTS_PHYSICAL | FTS_NOSTAT, 1, actions[i]);
	}
	char *empty[] = { "t", "", NULL };
	one_fts(empty, FTS_PHYSICAL, 0, PLAIN);
	one_fts(t, 0x1000, 0, PLAIN);

	/* p/ is deeper than the path buffer fts starts with */
	char *deep[] = { "p", NULL };
	char *deep_and_t[] = { "t/sub", "p", "t/a.txt", NULL };
	one_fts(deep, FTS_PHYSICAL, 0, PLAIN);
	one_fts(deep, FTS_PHYSICAL | FTS_NOCHDIR, 0, PLAIN);
	one_fts(deep, FTS_LOGICAL, 1, PLAIN);
	one_fts(deep_and_t, FTS_PHYSICAL, 0, PLAIN);
	one_fts(deep_and_t, FTS_PHYSICAL | FTS_NOCHDIR, 1, CHILDREN);
	one_fts(deep_and_t, FTS_PHYSICAL | FTS_NOSTAT, 0, NAMES);

	FTS *fts = fts_open(t, FTS_PHYSICAL, NULL);
	FTSENT *p = fts_read(fts);
	errno = 0;
	printf("fts_set bad: %d errno=%d\n", fts_set(fts, p, 99), errno);
	printf("fts_children bad: %p errno=%d\n", (void *)fts_children(fts, 5), errno);
	fts_close(fts);

	FTS64 *f64 = fts64_open(t, FTS_PHYSICAL | FTS_NOCHDIR, NULL);
	FTSENT64 *q;
	int n = 0;
	while ((q = fts64_read(f64)) != NULL) {
		if (n++ == 0)
			fts64_set(f64, q, FTS_AGAIN);
		printf("  fts64 %s %d\n", q->fts_path, q->fts_info);
	}
	printf("  fts64 close %d\n", fts64_close(f64));
}

/* ------------------------------------------------------------ merged view */

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static char *names[4096];
static int nnames;

static void add_name(const char *s)
{
	if (nnames < 4096)
		names[nnames++] = strdup(s);
}

static void flush_names(const char *what)
{
	qsort(names, nnames, sizeof *names, cmp_str);
	printf("%s:", what);
	for (int i = 0; i < nnames; i++) {
		printf(" %s", names[i]);
		free(names[i]);
	}
	printf("\n");
	nnames = 0;
}

static int view_cb(const char *path, const struct stat *st, int flag, struct FTW *f)
{
	(void)f;
	char buf[4200];
	snprintf(buf, sizeof buf, "%s:%d:%c", path, flag, type_char(st->st_mode));
	add_name(buf);
	return 0;
}

static void probe_view(const char *dir)
{
	struct dirent **list;
	int n = scandir(dir, &list, NULL, alphasort);
	for (int i = 0; i < n; i++) {
		add_name(list[i]->d_name);
		free(list[i]);
	}
	if (n >= 0)
		free(list);
	flush_names("scandir");

	nftw(dir, view_cb, 4, FTW_PHYS);
	flush_names("nftw");
	nftw(dir, view_cb, 1, FTW_PHYS | FTW_CHDIR | FTW_DEPTH);
	flush_names("nftw-chdir");

	char pattern[4200];
	snprintf(pattern, sizeof pattern, "%s/*/*", dir);
	glob_t g;
	if (glob(pattern, GLOB_MARK, NULL, &g) == 0) {
		for (size_t i = 0; i < g.gl_pathc; i++)
			add_name(g.gl_pathv[i]);
		globfree(&g);
	}
	flush_names("glob");

	const int opts[] = { FTS_PHYSICAL, FTS_PHYSICAL | FTS_NOCHDIR, FTS_LOGICAL };
	for (unsigned i = 0; i < 3; i++) {
		char *roots[] = { (char *)dir, NULL };
		FTS *fts = fts_open(roots, opts[i], NULL);
		FTSENT *p;
		while (fts && (p = fts_read(fts)) != NULL) {
			char buf[4200];
			snprintf(buf, sizeof buf, "%s:%d", p->fts_path, p->fts_info);
			add_name(buf);
		}
		if (fts)
			fts_close(fts);
		char what[32];
		snprintf(what, sizeof what, "fts-%#x", opts[i]);
		flush_names(what);
	}
}

/* ------------------------------------------------------------------- main */

static void check_resolution(void)
{
	const char *fns[] = {
		"scandir", "scandir64", "scandirat", "scandirat64", "glob", "glob64",
		"ftw", "ftw64", "nftw", "nftw64", "fts_open", "fts_read", "fts_children",
		"fts_set", "fts_close", "fts64_open", "fts64_read", "fts64_children",
		"fts64_set", "fts64_close",
	};
	for (unsigned i = 0; i < sizeof fns / sizeof *fns; i++) {
		Dl_info info;
		void *f = dlsym(RTLD_DEFAULT, fns[i]);
		if (!f || !dladdr(f, &info) || !strstr(info.dli_fname, "libovl_shim")) {
			fprintf(stderr, "walk_probe: %s does not come from the shim\n", fns[i]);
			exit(3);
		}
	}
}

static void drop_root(void)
{
	if (geteuid() != 0)
		return;
	if (setgroups(0, NULL) != 0 || setgid(65534) != 0 || setuid(65534) != 0) {
		perror("walk_probe: dropping root");
		exit(4);
	}
}

int main(int argc, char **argv)
{
	setvbuf(stdout, NULL, _IOFBF, 1 << 16);
	if (getenv("WALK_PROBE_SHIM"))
		check_resolution();
	if (argc == 3 && strcmp(argv[1], "view") == 0) {
		probe_view(argv[2]);
		return 0;
	}
	if (argc != 2 || strcmp(argv[1], "all") != 0) {
		fprintf(stderr, "usage: walk_probe all | walk_probe view DIR\n");
		return 2;
	}
	drop_root();
	probe_scandir();
	probe_glob();
	probe_ftw();
	probe_fts();
	return 0;
}
