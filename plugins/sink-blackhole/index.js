// The blackhole sink plugin. Its factory and sink arrive with the table pipeline (changefeed issue);
// until then the package declares the scheme so changefeeds can name it.
export const schemes = ['blackhole'];
