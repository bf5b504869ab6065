/*
 * cleancenter's own trigger rules for the config extractors (configs/__init__.py).
 * Community rule packs may be absent or miss a variant: these are cheap, selective
 * triggers that send a sample to an extractor, which then decides whether there is a
 * real configuration. A hit here is not a verdict.
 */

rule cc_irc_bot
{
    meta:
        description = "IRC client protocol strings of a bot: NICK, USER, JOIN and PRIVMSG together"
    strings:
        $nick = "NICK " ascii wide
        $user = "USER " ascii wide
        $join = "JOIN " ascii wide
        $privmsg = "PRIVMSG " ascii wide
        $ping = "PING" ascii wide
        $pong = "PONG" ascii wide
        $notice = "NOTICE " ascii wide
        $mode = "MODE " ascii wide
    condition:
        $nick and $join and ($privmsg or $notice) and ($user or ($ping and $pong) or $mode)
}

rule cc_mirai_table
{
    meta:
        description = "Mirai's string table: known entries XOR-encoded with 0x22 (table key 0xdeadbeef, its four bytes XORed together), each with its encoded NUL"
    strings:
        $proc = "/proc/\x00" xor(0x22)
        $exe = "/exe\x00" xor(0x22)
        $fd = "/fd\x00" xor(0x22)
        $maps = "/maps\x00" xor(0x22)
        $tcp = "/proc/net/tcp\x00" xor(0x22)
        $wd1 = "/dev/watchdog\x00" xor(0x22)
        $wd2 = "/dev/misc/watchdog\x00" xor(0x22)
        $tun = "listening tun0\x00" xor(0x22)
        $tsource = "TSource Engine Query\x00" xor(0x22)
        $resolv = "/etc/resolv.conf\x00" xor(0x22)
        $nameserver = "nameserver \x00" xor(0x22)
        $ncorrect = "ncorrect\x00" xor(0x22)
        $busybox = "/bin/busybox \x00" xor(0x22)
    condition:
        2 of them
}

rule cc_downloader
{
    meta:
        description = "Fetch-and-run: wget/curl/tftp/ftpget command lines with a chmod or a run; PE: URLDownloadToFile with ShellExecute/WinExec/CreateProcess"
    strings:
        $get_url = /(wget|curl)[ \t][^\n;|&]{0,120}(https?|ftp):\/\/[A-Za-z0-9]/
        $get_tftp = /tftp[ \t][^\n;|&]{0,80}-r[ \t]*[^ \t\n;|&]+[^\n;|&]{0,80}[0-9A-Za-z]\.[0-9A-Za-z]/
        $get_ftp = /ftpget[ \t][^\n;|&]{0,120}[0-9A-Za-z]\.[0-9A-Za-z]/
        $chmod = /chmod[ \t]+(\+x|[0-7]{3,4}|[ugoa]*\+[rwx]*x)/
        $pipe_sh = /\|[ \t]*(ba|da|z|)sh\b/
        $url_dl = "URLDownloadToFile" ascii wide
        $shellexec = "ShellExecute" ascii wide
        $winexec = "WinExec" ascii wide
        $createproc = "CreateProcess" ascii wide
    condition:
        (any of ($get_*) and ($chmod or $pipe_sh))
        or (uint16(0) == 0x5A4D and $url_dl and ($shellexec or $winexec or $createproc))
}
