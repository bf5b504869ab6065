"""Texts of the public pages: home, landing page, downloads, errors."""

from __future__ import annotations

JA: dict[str, str] = {
    "site_name": "cleancenter ボット対策センター",
    "lang_name": "日本語",
    "switch_label": "English",
    "skip": "本文へ",
    "nav_home": "ホーム",
    "nav_download": "ダウンロード",
    "nav_funnel": "対策の状況",
    "footer": "cleancenter はオープンソースのボット対策センターです。"
              "このサイトがパスワードやカード番号、個人情報を尋ねることはありません。",
    # home
    "home_title": "ボット対策センター",
    "home_intro_1": "当センターは、プロバイダ網内のおとり(ハニーポット)でボットの攻撃を観測し、"
                    "捕まえたボットを解析して駆除ツールを作っています。",
    "home_intro_2": "感染の疑いがある通信の記録はプロバイダに届けられ、"
                    "プロバイダがご契約者にお知らせを送ります。",
    "home_download": "駆除ツール(クリーナー)のダウンロード",
    "home_funnel_title": "お知らせのあとに起きたこと",
    "home_funnel_note": "通知した件数のうち、案内ページを開いた・クリーナーを入手した・"
                        "クリーナーの結果が届いた件数と、4週間以内に同じアドレスから"
                        "再び攻撃が観測された件数です。最後の行は Cyber Clean Center の"
                        "2006年度の数字です。",
    "funnel_isp": "プロバイダ",
    "funnel_all": "全体",
    "funnel_notified": "通知",
    "funnel_visited": "案内ページ",
    "funnel_downloaded": "ダウンロード",
    "funnel_cleaned": "クリーナー実行",
    "funnel_seen_again": "再観測(4週間)",
    "funnel_ccc": "CCC 2006年度",
    "funnel_empty": "まだ通知はありません。",
    "funnel_api": "同じ数字の JSON",
    "code_title": "メールの確認コードを入力する",
    "code_lead": "メールのリンクを開かずに、このサイトのアドレスをご自分で入力して来られた方は、"
                 "メールに書かれた確認コードを入力してください。",
    "code_label": "確認コード",
    "code_submit": "確認する",
    "code_bad": "確認コードの形式が正しくありません。メールに書かれたとおりに入力してください。",
    # landing
    "landing_title": "ボット感染の疑いについてのお知らせ",
    "landing_lead": "ご契約のプロバイダからのメールでこのページを開いた方へ。"
                    "以下の手順でパソコンなどを確認し、ボットを駆除してください。",
    "landing_from": "このお知らせは、プロバイダ {isp} を通じてお送りしたものです。",
    "landing_unknown": "このリンクのお知らせは見つかりませんでした。"
                       "手順はどなたにも同じですので、以下に沿って確認してください。",
    "step_what_title": "何が起きたのか",
    "step_what_body": "当センターのおとりのシステムに、あなたのインターネット接続から"
                      "攻撃の通信が届きました。お使いの機器がボット(遠隔操作される"
                      "不正プログラム)に感染しているおそれがあります。"
                      "当センターはあなたのお名前や連絡先を知りません。"
                      "メールはプロバイダが送ったものです。",
    "step_clean_title": "クリーナーをダウンロードして実行する",
    "step_clean_body": "当センターのクリーナーはボットを見つけて駆除します。"
                       "まず確認だけを行い、駆除は --clean を付けたときだけ行います。"
                       "駆除したものは元に戻せます。",
    "step_clean_link": "クリーナーをダウンロード",
    "step_clean_checksum": "ダウンロードしたファイルの SHA-256 は、ダウンロードページの値と"
                           "照らし合わせてください。",
    "step_update_title": "OS とソフトウェアを最新にする",
    "step_update_body": "OS の更新、ブラウザ・プラグイン・ルーターのファームウェアの更新を"
                        "行ってください。ボットの多くは古い弱点から入り込みます。",
    "step_password_title": "駆除のあとでパスワードを変える",
    "step_password_body": "ボットはパスワードを盗むことがあります。"
                          "駆除が済んでから、別の安全な機器でメール・ネットバンキング・"
                          "ルーターなどのパスワードを変えてください。"
                          "駆除の前に変えると、新しいパスワードも盗まれるおそれがあります。",
    "step_genuine_title": "このサイトが本物か確かめる",
    "step_genuine_body": "当センターがパスワード・カード番号・個人情報を尋ねたり、"
                         "電話をかけたり、お金を求めたりすることはありません。"
                         "ブラウザのアドレス欄が https で、プロバイダが案内するアドレスと"
                         "同じかを確認してください。不安なときはメールのリンクを使わず、"
                         "プロバイダの公式サイトに載っている窓口に問い合わせてください。",
    # downloads
    "download_title": "ダウンロード",
    "download_intro": "当センターが配布しているファイルと、その SHA-256 値です。",
    "download_cleaner": "最新のクリーナー",
    "download_none": "ダウンロードできるファイルはまだありません。",
    "download_file": "ファイル",
    "download_size": "大きさ(バイト)",
    "download_sha256": "SHA-256",
    "download_unavailable_title": "クリーナーはまだ配布していません",
    "download_unavailable_body": "クリーナーはまだダウンロードできません。"
                                 "しばらくしてからもう一度お試しください。"
                                 "その間も、OS とソフトウェアの更新は行えます。",
    # errors
    "error_title": "ページが見つかりません",
    "error_body": "お探しのページは見つかりませんでした。",
    "error_generic_title": "エラー",
    "error_generic_body": "このリクエストにはお応えできませんでした。",
    "back_home": "ホームへ戻る",
}

EN: dict[str, str] = {
    "site_name": "cleancenter bot countermeasure center",
    "lang_name": "English",
    "switch_label": "日本語",
    "skip": "Skip to content",
    "nav_home": "Home",
    "nav_download": "Downloads",
    "nav_funnel": "Figures",
    "footer": "cleancenter is an open-source bot countermeasure center. This site never "
              "asks for passwords, card numbers or personal details.",
    "home_title": "Bot countermeasure center",
    "home_intro_1": "This center watches bot attacks on decoy systems (honeypots) inside "
                    "internet providers' networks, analyses the bots it catches and builds "
                    "a tool that removes them.",
    "home_intro_2": "Records of suspicious connections go to the providers, who notify "
                    "their subscribers.",
    "home_download": "Download the removal tool (the cleaner)",
    "home_funnel_title": "What happened after the notices",
    "home_funnel_note": "Of the notices sent: how many opened this site, downloaded the "
                        "cleaner, sent a cleaner report, and how many addresses attacked the "
                        "decoys again within four weeks. The last row holds Cyber Clean "
                        "Center's figures for fiscal year 2006.",
    "funnel_isp": "Provider",
    "funnel_all": "All",
    "funnel_notified": "Notified",
    "funnel_visited": "Visited",
    "funnel_downloaded": "Downloaded",
    "funnel_cleaned": "Ran the cleaner",
    "funnel_seen_again": "Seen again (4 weeks)",
    "funnel_ccc": "CCC FY2006",
    "funnel_empty": "No notices yet.",
    "funnel_api": "The same figures as JSON",
    "code_title": "Enter the code from your mail",
    "code_lead": "If you typed this site's address yourself instead of opening the link "
                 "in the mail, enter the code the mail gives.",
    "code_label": "Code",
    "code_submit": "Check",
    "code_bad": "That is not a code of ours. Please type it exactly as the mail shows it.",
    "landing_title": "Your connection may be used by a bot",
    "landing_lead": "You opened this page from your internet provider's mail. Please "
                    "follow these steps to check your computer and remove the bot.",
    "landing_from": "This notice was sent to you through your provider, {isp}.",
    "landing_unknown": "We could not find the notice for this link. The steps are the same "
                       "for everyone; please follow them below.",
    "step_what_title": "What happened",
    "step_what_body": "The center's decoy systems received attack traffic from your internet "
                      "connection. A device you use may be infected with a bot (a program "
                      "that others control remotely). The center does not know your name "
                      "or address; your provider sent the mail.",
    "step_clean_title": "Download and run the cleaner",
    "step_clean_body": "The center's cleaner finds and removes bots. By default it only "
                       "checks; it removes things only with --clean, and everything it "
                       "removes can be restored.",
    "step_clean_link": "Download the cleaner",
    "step_clean_checksum": "Compare the SHA-256 of the downloaded file with the value on the "
                           "downloads page.",
    "step_update_title": "Update your system and software",
    "step_update_body": "Install your operating system's updates and update your browser, "
                        "plug-ins and your router's firmware. Most bots get in through old "
                        "weaknesses.",
    "step_password_title": "Change your passwords after cleaning",
    "step_password_body": "Bots can steal passwords. Once the bot is removed, change the "
                          "passwords of your mail, online banking, router and so on, from a "
                          "clean device. Changed before cleaning, the new passwords may be "
                          "stolen too.",
    "step_genuine_title": "How to tell this site is genuine",
    "step_genuine_body": "The center never asks for passwords, card numbers or personal "
                         "details, never calls you and never asks for money. Check that the "
                         "address bar shows https and the address your provider gives. If "
                         "in doubt, do not use the link in the mail: contact your provider "
                         "through the contact details on its official site.",
    "download_title": "Downloads",
    "download_intro": "The files this center publishes, with their SHA-256 sums.",
    "download_cleaner": "The newest cleaner",
    "download_none": "Nothing to download yet.",
    "download_file": "File",
    "download_size": "Size (bytes)",
    "download_sha256": "SHA-256",
    "download_unavailable_title": "The cleaner is not available yet",
    "download_unavailable_body": "The cleaner cannot be downloaded yet. Please try again "
                                 "later. Meanwhile you can already update your system and "
                                 "software.",
    "error_title": "Page not found",
    "error_body": "The page you asked for does not exist.",
    "error_generic_title": "Error",
    "error_generic_body": "This request could not be answered.",
    "back_home": "Back to the home page",
}
