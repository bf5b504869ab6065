"""Texts of the home page's figures and charts, the downloads page's checks, and /about."""

from __future__ import annotations

JA: dict[str, str] = {
    "nav_about": "ボットとは",
    "home_about_link": "ボットとは何か、どう防ぐか",
    # figures
    "fig_title": "当センターの数字",
    "fig_note": "右の列は Cyber Clean Center(CCC)が公表した数字です。"
                "特に記載のないものは 2006年度(2006年4月〜2007年3月)の値です。",
    "fig_item": "項目",
    "fig_ours": "当センター",
    "fig_ccc": "CCC(2006年度)",
    "fig_samples_collected": "収集した検体(重複を含む)",
    "fig_samples_unique": "ユニークな検体",
    "fig_samples_new_today": "今日新たに見つかった検体",
    "fig_families": "ファミリー(種類)",
    "fig_infected_hosts": "攻撃が観測された感染ホスト",
    "fig_notified": "送られたお知らせ",
    "fig_downloaded": "クリーナーのダウンロード",
    "fig_cleaned": "クリーナーの実行報告",
    "fig_seen_again": "4週間以内の再観測",
    "fig_ccc_new_per_day": "約 {n} / 日(2009年3月時点)",
    "fig_ccc_seen_again": "20% 未満(クリーナー実行者では 2%)",
    "fig_computed": "集計時刻(UTC):",
    "fig_window": "グラフの期間:{start} 〜 {end}(UTC)",
    "fig_window_historic": "データが古いため、データの最後の 30 日を表示しています。",
    # charts
    "chart_table": "数値を表で見る",
    "chart_day": "日付(UTC)",
    "chart_count": "件数",
    "chart_infections_title": "1日あたりの感染ホスト数",
    "chart_infections_desc": "おとりに攻撃の通信を送った送信元アドレスの数を、"
                             "日ごとに数えたものです。",
    "chart_infections_y": "ホスト数",
    "chart_samples_title": "1日あたりの新しい検体数",
    "chart_samples_desc": "はじめて見つかった検体(sha256 が新しいもの)の数を、"
                          "日ごとに数えたものです。",
    "chart_samples_y": "検体数",
    "chart_families_title": "検体数の多いファミリー",
    "chart_families_desc": "ファミリーごとのユニークな検体数(上位 10)です。",
    "chart_families_x": "ユニークな検体数",
    "chart_families_y": "ファミリー",
    "chart_funnel_title": "お知らせのあとの流れ",
    "chart_funnel_desc": "送られたお知らせのうち、案内ページを開いた・クリーナーを入手した・"
                         "クリーナーの報告が届いた・4週間以内に再び観測された件数です。",
    "chart_funnel_x": "お知らせの件数",
    "chart_funnel_y": "段階",
    "chart_empty": "まだデータがありません。",
    # downloads page
    "dl_cleaner_title": "クリーナー",
    "dl_cleaner_lead": "Linux(x86-64、glibc 2.28 以降、Python 3.11)用の1ファイルで動く版(.pyz)と、"
                       "pip でインストールする版(.whl、Python 3.11 以上)があります。"
                       "どちらにも当センターの公開鍵が組み込まれています。",
    "dl_pyz": "1ファイル版(python3 で実行)",
    "dl_whl": "pip でインストールする版",
    "dl_no_cleaner": "クリーナーはまだ配布していません。",
    "dl_definitions_title": "定義ファイル",
    "dl_definitions_version": "バージョン {version}({created} 作成)",
    "dl_definitions_none": "定義ファイルはまだ配布していません。",
    "dl_sig_ok": "署名を確認しました(当センターの鍵)。",
    "dl_sig_published": "署名を確認しました(このページで公開している鍵)。",
    "dl_sig_bad": "署名を確認できませんでした。このファイルは使わないでください。",
    "dl_sig_unknown": "署名を確認する鍵がありません。",
    "dl_key_title": "公開鍵",
    "dl_key_fingerprint": "指紋(SHA-256)",
    "dl_key_none": "公開鍵はまだ配布していません。",
    "dl_key_mismatch": "公開している鍵が当センターの署名鍵と一致しません。"
                       "運営者に連絡してください。",
    "dl_check_title": "ファイルが本物か確かめるには",
    "dl_check_sums": "ダウンロードしたファイルと SHA256SUMS を同じフォルダに置き、"
                     "次のコマンドで確認します(「OK」と表示されれば一致しています)。",
    "dl_check_fingerprint": "公開鍵の指紋を、このページとは別の経路"
                            "(プロバイダからのメール、プロバイダの公式サイトなど)で確かめてください。"
                            "このページが偽物なら、ここに書かれた値も偽物かもしれないからです。",
    "dl_check_pin": "別の鍵を使いたいとき、または pip 版で鍵を改めて登録するとき:",
    "dl_check_update": "定義ファイルを取り込む(署名が確認できないものは拒否されます):",
    "dl_check_run": "確認だけを行い、結果を表示します(駆除は --clean を付けたときだけ):",
    "dl_all_title": "すべてのファイル",
    "dl_bytes": "バイト",
    "dl_this_site": "(このサイトのアドレス)",
    # about
    "about_title": "ボットとは? 身を守るには",
    "about_lead": "プロバイダから「ボットに感染しているおそれがあります」という"
                  "お知らせを受け取った方へ。"
                  "ボットとは何か、どうすれば防げるかを説明します。",
    "about_what_title": "ボットとは",
    "about_what_body": "ボットは、パソコンやルーター、カメラなどに入り込み、"
                       "持ち主の知らないうちに外から操られるプログラムです。"
                       "操る人(攻撃者)は、たくさんの機器をまとめて命令し、"
                       "迷惑メールを送ったり、ほかのサイトを攻撃したり、"
                       "パスワードを盗んだり、別の不正プログラムを取り込んだりします。",
    "about_signs_title": "感染していても気づきにくい",
    "about_signs_body": "ボットは目立たないように動きます。"
                        "画面に何も出ないことも、動作がいつも通りのこともあります。"
                        "本物のシステムのプログラムに似た名前を付けたり、"
                        "自分のファイルを消したりして隠れます。"
                        "ですから、お知らせを受け取ったら、"
                        "異常を感じなくてもクリーナーで確認してください。",
    "about_how_title": "どこから入り込むのか",
    "about_how_body": "多くは、更新されていない古いソフトウェアの弱点、"
                      "メールの添付ファイル、信頼できないサイトからのダウンロード、"
                      "初期設定のままの簡単なパスワード(特にルーターやカメラ)から入り込みます。",
    "about_protect_title": "身を守るためにできること",
    "about_os": "OS を更新する:Windows Update や各 OS の自動更新を有効にし、"
                "お知らせが出たら早めに適用してください。",
    "about_plugins": "ソフトウェアとプラグインを更新する:ブラウザ、PDF リーダー、"
                     "ブラウザの拡張機能やプラグイン、ルーターのファームウェアも最新にしてください。"
                     "使っていないものは削除しましょう。",
    "about_mail": "メールの添付ファイルに注意する:"
                  "心当たりのない添付ファイルやリンクは開かないでください。"
                  "知り合いからのメールでも、思いがけない添付ファイルは送り主に確かめてから開きましょう。",
    "about_downloads": "ダウンロードに注意する:ソフトウェアは公式サイトや公式ストアから入手し、"
                       "「無料で使える」「動画を見るにはこれが必要」といった誘いには乗らないでください。",
    "about_passwords": "パスワードを変える:ルーターやカメラの初期パスワードは必ず変更し、"
                       "サービスごとに別のパスワードを使ってください。",
    "about_security_software": "セキュリティ対策ソフトを使い、定義ファイルを最新に保ってください。",
    "about_infected_title": "感染しているかもしれないとき",
    "about_infected_body": "当センターのクリーナーで確認し、見つかったボットを駆除してください。"
                           "駆除が済んでから、別の安全な機器でパスワードを変えてください。"
                           "心配なときは、お使いの機器のメーカーやプロバイダの窓口に相談してください。",
    "about_cleaner_link": "クリーナーのダウンロードへ",
    "about_genuine": "当センターやプロバイダが、パスワード・カード番号・個人情報を"
                     "メールや電話で尋ねることはありません。",
}

EN: dict[str, str] = {
    "nav_about": "What is a bot?",
    "home_about_link": "What a bot is, and how to protect yourself",
    "fig_title": "The center's figures",
    "fig_note": "The right-hand column holds the figures Cyber Clean Center (CCC) published, "
                "for its fiscal year 2006 (April 2006 to March 2007) unless noted.",
    "fig_item": "Figure",
    "fig_ours": "This center",
    "fig_ccc": "CCC (FY2006)",
    "fig_samples_collected": "Samples collected (with duplicates)",
    "fig_samples_unique": "Unique samples",
    "fig_samples_new_today": "New samples today",
    "fig_families": "Families",
    "fig_infected_hosts": "Infected hosts seen attacking",
    "fig_notified": "Notices sent",
    "fig_downloaded": "Cleaner downloads",
    "fig_cleaned": "Cleaner reports received",
    "fig_seen_again": "Seen again within 4 weeks",
    "fig_ccc_new_per_day": "about {n} a day (by March 2009)",
    "fig_ccc_seen_again": "under 20% (2% of those who ran the cleaner)",
    "fig_computed": "Counted at (UTC):",
    "fig_window": "Charts cover {start} to {end} (UTC).",
    "fig_window_historic": "The data is older than a month, so the charts show its own last "
                           "30 days.",
    "chart_table": "The numbers as a table",
    "chart_day": "Day (UTC)",
    "chart_count": "Count",
    "chart_infections_title": "Infected hosts per day",
    "chart_infections_desc": "How many source addresses sent attack traffic to the decoys, "
                             "day by day.",
    "chart_infections_y": "Hosts",
    "chart_samples_title": "New samples per day",
    "chart_samples_desc": "How many samples (new sha256 values) were seen for the first time, "
                          "day by day.",
    "chart_samples_y": "Samples",
    "chart_families_title": "Families with the most samples",
    "chart_families_desc": "Unique samples per family, the top ten.",
    "chart_families_x": "Unique samples",
    "chart_families_y": "Family",
    "chart_funnel_title": "What happened after the notices",
    "chart_funnel_desc": "Of the notices sent: how many opened this site, downloaded the "
                         "cleaner, sent a cleaner report, and were seen attacking again within "
                         "four weeks.",
    "chart_funnel_x": "Notices",
    "chart_funnel_y": "Step",
    "chart_empty": "No data yet.",
    "dl_cleaner_title": "The cleaner",
    "dl_cleaner_lead": "A single file for Linux (x86-64, glibc 2.28 or later, Python 3.11) "
                       "that runs as it is (.pyz), and a package to install with pip (.whl, "
                       "Python 3.11 or later). Both have the center's public key built in.",
    "dl_pyz": "Single file (run it with python3)",
    "dl_whl": "Package for pip",
    "dl_no_cleaner": "The cleaner is not available yet.",
    "dl_definitions_title": "Definitions",
    "dl_definitions_version": "Version {version} (made {created})",
    "dl_definitions_none": "No definitions published yet.",
    "dl_sig_ok": "Signature checked with the center's key.",
    "dl_sig_published": "Signature checked with the key published on this page.",
    "dl_sig_bad": "The signature could not be verified. Do not use this file.",
    "dl_sig_unknown": "There is no key to check the signature with.",
    "dl_key_title": "Public key",
    "dl_key_fingerprint": "Fingerprint (SHA-256)",
    "dl_key_none": "No public key published yet.",
    "dl_key_mismatch": "The published key is not the center's signing key. Please tell the "
                       "operators.",
    "dl_check_title": "How to check the files",
    "dl_check_sums": "Put the downloaded files and SHA256SUMS in one folder and run the "
                     "command below; each file should say \"OK\".",
    "dl_check_fingerprint": "Compare the key's fingerprint through a second channel (your "
                            "provider's mail, its official site): if this page were a fake, "
                            "the values on it could be fake too.",
    "dl_check_pin": "To trust the key yourself (the pip package, or another key):",
    "dl_check_update": "To install the definitions (a bundle whose signature fails is "
                       "refused):",
    "dl_check_run": "To check your machine (it only looks; it removes things only with "
                    "--clean):",
    "dl_all_title": "All files",
    "dl_bytes": "bytes",
    "dl_this_site": "(this-site)",
    "about_title": "What is a bot, and how do I protect myself?",
    "about_lead": "For people whose internet provider wrote that their connection may be "
                  "used by a bot: what a bot is, and what you can do.",
    "about_what_title": "What a bot is",
    "about_what_body": "A bot is a program that gets into a computer, a router or a camera "
                       "and is then controlled by someone else, without the owner knowing. "
                       "The person behind it (the attacker) commands many machines at once: "
                       "to send spam, to attack other sites, to steal passwords, or to "
                       "bring in more harmful programs.",
    "about_signs_title": "You may not notice it",
    "about_signs_body": "Bots try not to be seen. Nothing may show on the screen and the "
                        "machine may work as usual. They hide behind names that look like "
                        "system programs and may delete their own file. So if you got a "
                        "notice, check with the cleaner even if everything seems fine.",
    "about_how_title": "How bots get in",
    "about_how_body": "Mostly through weaknesses in old software that was not updated, mail "
                      "attachments, downloads from untrustworthy sites, and simple or factory "
                      "passwords (routers and cameras especially).",
    "about_protect_title": "What you can do",
    "about_os": "Update your operating system: turn on automatic updates (Windows Update or "
                "your system's own) and install updates soon after they appear.",
    "about_plugins": "Update your software and plug-ins: the browser, PDF reader, browser "
                     "extensions and plug-ins, and your router's firmware. Remove what you "
                     "do not use.",
    "about_mail": "Be careful with mail attachments: do not open attachments or links you "
                  "did not expect. Even when a mail comes from someone you know, ask them "
                  "before opening an unexpected attachment.",
    "about_downloads": "Be careful with downloads: get software from its official site or "
                       "store, and ignore offers like \"free version\" or \"you need this to "
                       "watch the video\".",
    "about_passwords": "Change passwords: always change the factory password of routers and "
                       "cameras, and use a different password for each service.",
    "about_security_software": "Use security software and keep its definitions up to date.",
    "about_infected_title": "If you may be infected",
    "about_infected_body": "Check with the center's cleaner and remove what it finds. Change "
                           "your passwords after cleaning, from another, clean device. If in "
                           "doubt, ask your device's maker or your provider's help desk.",
    "about_cleaner_link": "Go to the cleaner download",
    "about_genuine": "Neither the center nor your provider will ever ask for passwords, card "
                     "numbers or personal details by mail or phone.",
}
