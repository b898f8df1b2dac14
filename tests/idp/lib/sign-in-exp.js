// Logto's public sign-in experience document, `GET /api/.well-known/sign-in-exp`: what the
// sign-in page offers, which Logto's own experience app is drawn from and a native app may read
// (logto-desktop does, to offer "Continue with Amazon" only where it leads to Amazon). The shape
// is Logto 1.x's (`getFullSignInExperience`): `socialConnectors` lists every connector whose
// target is in `socialSignInConnectorTargets`, as its metadata plus the connector's id. Only the
// fields a client could act on are filled; the rest carry Logto's defaults.

// The Amazon connector's id, as Logto's database would give it (its callback path stays
// `/callback/amazon` in this provider).
export const AMAZON_CONNECTOR_ID = 'amzn4logtodesk';

export function signInExperience({ endpoint, amazonConnector }) {
  const amazon = {
    id: AMAZON_CONNECTOR_ID,
    target: 'amazon',
    platform: 'Web',
    name: { en: 'Amazon', ja: 'Amazon' },
    logo: `${endpoint}/connectors/amazon/logo.svg`,
    logoDark: null,
    description: { en: 'Amazon is an online marketplace.' },
    isStandard: false,
    isTokenStorageSupported: false,
  };
  const targets = amazonConnector ? ['amazon'] : [];
  return {
    id: 'default',
    tenantId: 'default',
    color: { primaryColor: '#5D34F2', isDarkModeEnabled: false, darkPrimaryColor: '#A29BFE' },
    branding: {},
    hideLogtoBranding: false,
    languageInfo: { autoDetect: true, fallbackLanguage: 'en' },
    termsOfUseUrl: null,
    privacyPolicyUrl: null,
    agreeToTermsPolicy: 'Automatic',
    signIn: {
      methods: [{ identifier: 'username', password: true, verificationCode: false, isPasswordPrimary: true }],
    },
    signUp: { identifiers: ['username'], password: true, verify: false, secondaryIdentifiers: [] },
    socialSignIn: {},
    socialSignInConnectorTargets: targets,
    signInMode: 'SignInAndRegister',
    customCss: null,
    customContent: {},
    customUiAssets: null,
    passwordPolicy: {},
    mfa: { factors: [], policy: 'UserControlled' },
    singleSignOnEnabled: false,
    supportEmail: null,
    supportWebsiteUrl: null,
    unknownSessionRedirectUrl: null,
    captchaPolicy: {},
    sentinelPolicy: {},
    socialConnectors: amazonConnector ? [amazon] : [],
    ssoConnectors: [],
    forgotPassword: { phone: false, email: false },
    isDevelopmentTenant: false,
  };
}
