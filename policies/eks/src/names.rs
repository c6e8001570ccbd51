//! Annotation keys and class names of the AWS Load Balancer Controller and EKS.

/// Legacy Ingress class annotation.
pub const LEGACY_INGRESS_CLASS: &str = "kubernetes.io/ingress.class";
/// ALB target type (`ip` or `instance`).
pub const INGRESS_TARGET_TYPE: &str = "alb.ingress.kubernetes.io/target-type";
/// ALB scheme (`internal` or `internet-facing`).
pub const INGRESS_SCHEME: &str = "alb.ingress.kubernetes.io/scheme";
/// Puts a Network Load Balancer in front of the ALB (`"true"`).
pub const INGRESS_FRONTEND_NLB: &str = "alb.ingress.kubernetes.io/enable-frontend-nlb";
/// That NLB's scheme (`internal`, the default, or `internet-facing`).
pub const INGRESS_FRONTEND_NLB_SCHEME: &str = "alb.ingress.kubernetes.io/frontend-nlb-scheme";
/// ALB listeners, JSON: `[{"HTTPS": 443}]`.
pub const INGRESS_LISTEN_PORTS: &str = "alb.ingress.kubernetes.io/listen-ports";
/// ALB HTTP→HTTPS redirect port.
pub const INGRESS_SSL_REDIRECT: &str = "alb.ingress.kubernetes.io/ssl-redirect";
/// ALB ACM certificate ARNs, comma-separated.
pub const INGRESS_CERTIFICATE_ARN: &str = "alb.ingress.kubernetes.io/certificate-arn";
/// ALB TLS security policy.
pub const INGRESS_SSL_POLICY: &str = "alb.ingress.kubernetes.io/ssl-policy";

/// Hands a Service to the controller (`external`; deprecated `nlb-ip`) or the in-tree provider (`nlb`).
pub const SERVICE_LB_TYPE: &str = "service.beta.kubernetes.io/aws-load-balancer-type";
/// NLB target type (`ip` or `instance`).
pub const SERVICE_TARGET_TYPE: &str =
    "service.beta.kubernetes.io/aws-load-balancer-nlb-target-type";
/// NLB scheme (`internal` or `internet-facing`).
pub const SERVICE_SCHEME: &str = "service.beta.kubernetes.io/aws-load-balancer-scheme";
/// Deprecated "internal" flag (a boolean), still honoured by the controller
/// when the scheme annotation is absent.
pub const SERVICE_INTERNAL: &str = "service.beta.kubernetes.io/aws-load-balancer-internal";
/// The controller's NLB load balancer class.
pub const NLB_CLASS: &str = "service.k8s.aws/nlb";
/// EKS Auto Mode's NLB load balancer class (its built-in load balancer controller).
pub const AUTO_MODE_NLB_CLASS: &str = "eks.amazonaws.com/nlb";

/// IRSA: the IAM role of a ServiceAccount.
pub const ROLE_ARN: &str = "eks.amazonaws.com/role-arn";
/// IRSA: lifetime of the projected token, in seconds.
pub const TOKEN_EXPIRATION: &str = "eks.amazonaws.com/token-expiration";
/// The IngressGroup an Ingress joins.
pub const INGRESS_GROUP_NAME: &str = "alb.ingress.kubernetes.io/group.name";
