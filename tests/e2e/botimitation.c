/*
 * A harmless bot imitation for the cleaner's live test. It does what a simple IRC bot
 * does to a machine, and nothing else:
 *   --install DIR NAME CRONTAB PORT CHANNEL
 *       copies itself to DIR/NAME (a system-like name in a temp folder) and runs the copy;
 *   --run CRONTAB PORT CHANNEL   (the copy)
 *       deletes its own file, adds "@reboot <its path>" to CRONTAB (a file inside the
 *       test's root), connects to the IRC server on 127.0.0.1:PORT, joins CHANNEL and
 *       idles, answering PINGs. It only ever talks to 127.0.0.1 and runs no commands.
 */
#include <arpa/inet.h>
#include <limits.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

static const char server_marker[] = "irc://127.0.0.1/ cleancenter-bot-imitation";

static int copy_self(const char *dst) {
    FILE *in = fopen("/proc/self/exe", "rb");
    FILE *out = fopen(dst, "wb");
    char buf[65536];
    size_t n;
    if (!in || !out) return -1;
    while ((n = fread(buf, 1, sizeof buf, in)) > 0) fwrite(buf, 1, n, out);
    fclose(in);
    fclose(out);
    return chmod(dst, 0755);
}

static void irc(int port, const char *channel) {
    struct sockaddr_in addr = {0};
    char line[4096], nick[32];
    size_t used = 0;
    int s = socket(AF_INET, SOCK_STREAM, 0);
    addr.sin_family = AF_INET;
    addr.sin_port = htons((unsigned short)port);
    inet_pton(AF_INET, "127.0.0.1", &addr.sin_addr); /* loopback only, always */
    if (connect(s, (struct sockaddr *)&addr, sizeof addr) != 0) exit(4);
    snprintf(nick, sizeof nick, "cc%d", (int)getpid() % 1000000); /* ngircd allows 9 */
    dprintf(s, "NICK %s\r\nUSER %s 0 * :%s\r\n", nick, nick, server_marker);
    for (;;) {
        ssize_t got = recv(s, line + used, sizeof line - 1 - used, 0);
        char *start = line, *end;
        if (got <= 0) {
            pause(); /* server gone: idle until stopped */
            continue;
        }
        used += (size_t)got;
        line[used] = 0;
        while ((end = strstr(start, "\r\n")) != NULL) {
            *end = 0;
            if (strncmp(start, "PING ", 5) == 0) dprintf(s, "PONG %s\r\n", start + 5);
            if (strstr(start, " 001 ")) dprintf(s, "JOIN %s\r\n", channel);
            start = end + 2;
        }
        used = strlen(start);
        memmove(line, start, used);
    }
}

int main(int argc, char **argv) {
    if (argc == 7 && strcmp(argv[1], "--install") == 0) {
        char dst[PATH_MAX];
        snprintf(dst, sizeof dst, "%s/%s", argv[2], argv[3]);
        if (copy_self(dst) != 0) return 3;
        char *args[] = {dst, "--run", argv[4], argv[5], argv[6], NULL};
        execv(dst, args);
        return 3;
    }
    if (argc == 5 && strcmp(argv[1], "--run") == 0) {
        char self[PATH_MAX];
        ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
        if (n <= 0) return 3;
        self[n] = 0;
        unlink(self);
        FILE *cron = fopen(argv[2], "a");
        if (cron) {
            fprintf(cron, "@reboot %s\n", self);
            fclose(cron);
        }
        irc(atoi(argv[3]), argv[4]);
    }
    fprintf(stderr, "usage: %s --install DIR NAME CRONTAB PORT CHANNEL\n", argv[0]);
    return 2;
}
