// Every string the window shows, one table per language.
export const strings = {
  en: {
    appName: "Logto Desktop",
    tagline: "Sign in with your Logto account.",
    continueAmazon: "Continue with Amazon",
    signIn: "Sign in",
    finishInBrowser: "Finish signing in in your browser",
    timeLeft: "Time left:",
    cancel: "Cancel",
    signOut: "Sign out",
    errorTitle: "Something went wrong",
    tryAgain: "Try again",
    via: "Signed in with {provider}",
    loading: "Loading",
    announce: {
      "signed-out": "Signed out.",
      "signing-in": "Waiting for the browser.",
      "signed-in": "Signed in as {name}.",
      error: "Error: {message}",
    },
  },
  ja: {
    appName: "Logto Desktop",
    tagline: "Logto アカウントでサインインします。",
    continueAmazon: "Amazon で続行",
    signIn: "サインイン",
    finishInBrowser: "ブラウザーでサインインを完了してください",
    timeLeft: "残り時間:",
    cancel: "キャンセル",
    signOut: "サインアウト",
    errorTitle: "問題が発生しました",
    tryAgain: "もう一度試す",
    via: "{provider} でサインイン済み",
    loading: "読み込み中",
    announce: {
      "signed-out": "サインアウトしました。",
      "signing-in": "ブラウザーでの操作を待っています。",
      "signed-in": "{name} としてサインインしました。",
      error: "エラー: {message}",
    },
  },
};

export function pickLanguage(languages) {
  for (const tag of languages || []) {
    const base = String(tag).toLowerCase().split("-")[0];
    if (base in strings) return base;
  }
  return "en";
}
