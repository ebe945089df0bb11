/*
 * oxen-runas: runs a command as an unprivileged user, for the xl-info
 * initramfs, which checks that such a user is refused /dev/hvctl with a clear
 * message from xl-rs. Built statically by xtask (gcc -static -O2) into the
 * xl-info initramfs as /bin/oxen-runas; run by init-xl-info.sh.
 *
 *   oxen-runas UID PROGRAM [ARG...]
 *
 * Started as root, it drops the supplementary groups, sets the real,
 * effective and saved group and user ids to UID (1 to 65535; 65534 is
 * "nobody"), checks that root cannot be regained, and executes PROGRAM
 * (searched in PATH) with the arguments. Exit status 2 for a usage error, 1
 * when the ids cannot be changed, 127 when PROGRAM cannot be executed.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <grp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int main(int argc, char **argv)
{
    char *end;
    unsigned long id;

    if (argc < 3) {
        fprintf(stderr, "usage: oxen-runas UID PROGRAM [ARG...]\n");
        return 2;
    }
    errno = 0;
    id = strtoul(argv[1], &end, 10);
    if (errno != 0 || end == argv[1] || *end != '\0' || id == 0 || id > 65535) {
        fprintf(stderr, "oxen-runas: UID must be a number from 1 to 65535, not \"%s\"\n",
                argv[1]);
        return 2;
    }
    if (setgroups(0, NULL) != 0 || setresgid(id, id, id) != 0 ||
        setresuid(id, id, id) != 0) {
        fprintf(stderr, "oxen-runas: cannot become uid %lu: %s\n", id, strerror(errno));
        return 1;
    }
    if (setuid(0) == 0 || geteuid() == 0) {
        fprintf(stderr, "oxen-runas: root could be regained after dropping to uid %lu\n", id);
        return 1;
    }
    execvp(argv[2], &argv[2]);
    fprintf(stderr, "oxen-runas: cannot execute %s: %s\n", argv[2], strerror(errno));
    return 127;
}
